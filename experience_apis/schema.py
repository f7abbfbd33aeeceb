"""The GraphQL experience schema (SDL of record: graphql/schema.graphql, checked for drift by a test).

What a role may read is the one table of ``app.access`` (the same as REST): a field needing a
right the key lacks is refused with ``FORBIDDEN``, and every query filters by the principal.
"""

from __future__ import annotations

import uuid
from enum import Enum
from typing import Any

import strawberry
from pydantic import ValidationError
from strawberry.extensions import DisableIntrospection, MaxTokensLimiter
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import Info

from app.access import Right
from app.errors import ValidationFailed
from app.money import to_str
from experience_apis.context import Context
from experience_apis.graphql_errors import FaultLoggingSchema, MaskFaults
from experience_apis.guard import RequestGuard
from experience_apis.hardening import DocumentLimits
from process_apis.billing.views import InvoiceSummary
from process_apis.contracts import queries as contract_queries
from process_apis.contracts.views import ContractSummary, MilestoneView


class Allowed(BasePermission):
    """The field needs ``right`` (app.access.GRANTS): refused, never silently emptied, for other roles."""

    def __init__(self, right: Right) -> None:
        self.right = right

    def has_permission(self, source: Any, info: Info[Context, None], **kwargs: Any) -> bool:
        info.context.principal.require(self.right)  # raises Forbidden, mapped to extensions.code FORBIDDEN
        return True


def needs(right: Right) -> list[PermissionExtension]:
    return [PermissionExtension(permissions=[Allowed(right)], use_directives=False)]


@strawberry.enum(description="A contract's activation state")
class ContractStatus(Enum):
    active = "active"
    blocked = "blocked"


@strawberry.type
class Viewer:
    name: str
    role: str
    customer_external_id: str | None


@strawberry.type
class Milestone:
    key: str
    name: str
    amount: str = strawberry.field(description="Decimal string in the contract currency")
    status: str
    due_date: str | None
    accepted_at: str | None

    @staticmethod
    def from_view(m: MilestoneView) -> Milestone:
        return Milestone(
            key=m.key,
            name=m.name,
            amount=m.amount,
            status=m.status,
            due_date=m.due_date.isoformat() if m.due_date else None,
            accepted_at=m.accepted_at.isoformat() if m.accepted_at else None,
        )


@strawberry.type
class Invoice:
    id: strawberry.ID
    contract_id: strawberry.ID
    kind: str
    status: str
    currency: str
    invoice_date: str
    net: str
    tax: str | None
    total: str | None
    erp_ref: str | None
    posted_at: str | None

    @staticmethod
    def from_view(i: InvoiceSummary) -> Invoice:
        return Invoice(
            id=strawberry.ID(str(i.id)),
            contract_id=strawberry.ID(str(i.contract_id)),
            kind=i.kind,
            status=i.status,
            currency=i.currency,
            invoice_date=i.invoice_date.isoformat(),
            net=i.net,
            tax=i.tax,
            total=i.total,
            erp_ref=i.erp_ref,
            posted_at=i.posted_at.isoformat() if i.posted_at else None,
        )


@strawberry.type
class Contract:
    id: strawberry.ID
    number: str
    status: ContractStatus
    currency: str
    billing_model: str
    version: int
    project_id: str | None
    customer_external_id: str

    @strawberry.field(description="On invoices queued, posting or posted", extensions=needs(Right.READ_BILLING))
    async def billed_amount(self, info: Info[Context, None]) -> str:
        return await _money(info, self, "billed")

    @strawberry.field(
        description="Billable and not yet on a queued/posted invoice (blocked included)",
        extensions=needs(Right.READ_BILLING),
    )
    async def unbilled_amount(self, info: Info[Context, None]) -> str:
        return await _money(info, self, "unbilled")

    @strawberry.field(description="Held amounts that have a value", extensions=needs(Right.READ_BILLING))
    async def held_amount(self, info: Info[Context, None]) -> str:
        return await _money(info, self, "held")

    @strawberry.field(description="The latest version's milestone plan")
    async def milestones(self, info: Info[Context, None]) -> list[Milestone]:
        return [Milestone.from_view(m) for m in await info.context.milestones.load(uuid.UUID(self.id))]

    @strawberry.field(extensions=needs(Right.READ_BILLING))
    async def invoices(self, info: Info[Context, None]) -> list[Invoice]:
        return [Invoice.from_view(i) for i in await info.context.invoices.load(uuid.UUID(self.id))]

    @staticmethod
    def from_view(c: ContractSummary) -> Contract:
        return Contract(
            id=strawberry.ID(str(c.id)),
            number=c.number,
            status=ContractStatus(c.status),
            currency=c.currency,
            billing_model=c.billing_model,
            version=c.version,
            project_id=c.project_id,
            customer_external_id=c.customer_external_id,
        )


async def _money(info: Info[Context, None], contract: Contract, key: str) -> str:
    found = await info.context.money.load(uuid.UUID(contract.id))
    text = to_str(getattr(found, key) if found else 0, contract.currency)
    assert text is not None
    return text


@strawberry.type
class Query:
    @strawberry.field
    def viewer(self, info: Info[Context, None]) -> Viewer:
        principal = info.context.principal
        customer = principal.customers[0] if principal.role == "customer" else None
        return Viewer(name=principal.name, role=principal.role, customer_external_id=customer)

    @strawberry.field(extensions=needs(Right.READ_CONTRACTS))
    async def contract(self, info: Info[Context, None], id: strawberry.ID) -> Contract | None:
        try:
            contract_id = uuid.UUID(str(id))
        except ValueError:
            return None
        async with info.context.db.connection() as conn:
            # Scoped in the query: to a customer, another customer's contract does not exist.
            found = await contract_queries.find_contract_summary(conn, contract_id, info.context.principal)
        return Contract.from_view(found) if found else None

    @strawberry.field(extensions=needs(Right.READ_CONTRACTS))
    async def contracts(
        self,
        info: Info[Context, None],
        status: ContractStatus | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> list[Contract]:
        limit = max(1, min(first, info.context.max_page_size))
        try:
            q = contract_queries.ContractFilter(status=status.value if status else None, limit=limit, after=after)
        except ValidationError:  # only `after` can fail here: a cursor psbridge did not issue is the client's mistake
            raise ValidationFailed("the cursor is not one this API issued", code="INVALID_CURSOR") from None
        async with info.context.db.connection() as conn:
            page = await contract_queries.list_contracts(conn, info.context.principal, q)
        return [Contract.from_view(c) for c in page.items]


def build_schema(
    max_depth: int = 10, max_aliases: int = 20, max_tokens: int = 2000, introspection: bool = True
) -> strawberry.Schema:
    """The schema with its guard (experience_apis.guard) and error masking (experience_apis.graphql_errors).

    ``max_tokens`` also bounds what fragments expand to: no more selections than a document of that
    many tokens without fragments could hold, and no more same-named field pairs to compare.
    """
    limits = DocumentLimits(
        max_depth=max_depth, max_aliases=max_aliases, max_selections=max_tokens, max_repeated_pairs=max_tokens
    )
    extensions: list[Any] = [
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        # 64 characters a token is room for long names and literals; past it the lexer never starts.
        lambda: RequestGuard(limits, max_source_chars=64 * max_tokens, hide_suggestions=not introspection),
        MaskFaults,
    ]
    if not introspection:
        extensions.append(DisableIntrospection)  # production: the SDL of record is graphql/schema.graphql
    # Without introspection, "did you mean" suggestions would leak the schema field by field.
    config = StrawberryConfig(auto_camel_case=True, disable_field_suggestions=not introspection)
    return FaultLoggingSchema(query=Query, config=config, extensions=extensions)
