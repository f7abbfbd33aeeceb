"""The GraphQL experience schema (SDL of record: graphql/schema.graphql, checked for drift by a test)."""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from strawberry.extensions import DisableIntrospection, MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig
from strawberry.types import Info

from experience_apis.context import Context
from process_apis.contracts import queries as contract_queries


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
    def from_row(row: dict[str, Any]) -> Invoice:
        return Invoice(
            id=strawberry.ID(row["id"]),
            contract_id=strawberry.ID(row["contract_id"]),
            kind=row["kind"],
            status=row["status"],
            currency=row["currency"],
            invoice_date=row["invoice_date"],
            net=row["net"],
            tax=row["tax"],
            total=row["total"],
            erp_ref=row["erp_ref"],
            posted_at=row["posted_at"],
        )


@strawberry.type
class Contract:
    id: strawberry.ID
    number: str
    status: str
    currency: str
    billing_model: str
    version: int
    project_id: str | None
    customer_external_id: str

    @strawberry.field(description="On invoices queued, posting or posted")
    async def billed_amount(self, info: Info[Context, None]) -> str:
        return await _money(info, self.id, "billed")

    @strawberry.field(description="Billable and not yet on a queued/posted invoice (blocked included)")
    async def unbilled_amount(self, info: Info[Context, None]) -> str:
        return await _money(info, self.id, "unbilled")

    @strawberry.field(description="Held amounts that have a value")
    async def held_amount(self, info: Info[Context, None]) -> str:
        return await _money(info, self.id, "held")

    @strawberry.field(description="The latest version's milestone plan")
    async def milestones(self, info: Info[Context, None]) -> list[Milestone]:
        plan = await info.context.milestones.load(uuid.UUID(self.id))
        return [
            Milestone(
                key=m["key"],
                name=m["name"],
                amount=m["amount"],
                status=m["status"],
                due_date=m["due_date"],
                accepted_at=m["accepted_at"],
            )
            for m in plan
        ]

    @strawberry.field
    async def invoices(self, info: Info[Context, None]) -> list[Invoice]:
        return [Invoice.from_row(row) for row in await info.context.invoices.load(uuid.UUID(self.id))]

    @staticmethod
    def from_row(row: dict[str, Any]) -> Contract:
        return Contract(
            id=strawberry.ID(row["id"]),
            number=row["number"],
            status=row["status"],
            currency=row["currency"],
            billing_model=row["billing_model"],
            version=row["version"],
            project_id=row["project_id"],
            customer_external_id=row["customer_external_id"],
        )


async def _money(info: Info[Context, None], contract_id: str, key: str) -> str:
    found = await info.context.money.load(uuid.UUID(contract_id))
    return str(found[key]) if found else "0"


@strawberry.type
class Query:
    @strawberry.field
    def viewer(self, info: Info[Context, None]) -> Viewer:
        client = info.context.client
        return Viewer(name=client.name, role=client.role, customer_external_id=client.customer_external_id)

    @strawberry.field
    async def contract(self, info: Info[Context, None], id: strawberry.ID) -> Contract | None:
        try:
            contract_id = uuid.UUID(str(id))
        except ValueError:
            return None
        async with info.context.db.connection() as conn:
            # Scoped in the query: to a customer, another customer's contract does not exist.
            row = await contract_queries.find_contract_summary(conn, contract_id, info.context.customer_scope)
        return Contract.from_row(row) if row else None

    @strawberry.field
    async def contracts(
        self, info: Info[Context, None], status: str | None = None, first: int = 50, after: str | None = None
    ) -> list[Contract]:
        limit = max(1, min(first, info.context.max_page_size))
        async with info.context.db.connection() as conn:
            page = await contract_queries.list_contracts(conn, None, status, limit, after, info.context.customer_scope)
        return [Contract.from_row(row) for row in page["items"]]


def build_schema(
    max_depth: int = 10, max_aliases: int = 20, max_tokens: int = 2000, introspection: bool = True
) -> strawberry.Schema:
    extensions: list[Any] = [
        lambda: QueryDepthLimiter(max_depth=max_depth),
        lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
    ]
    if not introspection:
        extensions.append(DisableIntrospection)  # production: the SDL of record is graphql/schema.graphql
    return strawberry.Schema(query=Query, config=StrawberryConfig(auto_camel_case=True), extensions=extensions)
