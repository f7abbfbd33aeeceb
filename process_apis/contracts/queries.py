"""Contract read models: the detail view, the paginated list and the milestone plans.

Every query takes the ``Principal`` and filters by it in SQL: a contract outside the key's
scope does not exist for that key (404, never 403, so its existence is not confirmed).
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field

from app.access import Principal, scope_clause
from app.db import Connection
from app.errors import NotFound
from app.money import to_str
from app.pagination import PageQuery, after_keys, page_of
from app.responses import amount
from process_apis.contracts.propagation_store import PropagationRow
from process_apis.contracts.views import (
    ContractDetail,
    ContractPage,
    ContractSummary,
    ContractVersionView,
    CustomerView,
    ExpenseAllowanceView,
    MilestoneView,
    OpenException,
    RateView,
    TaxTermsView,
)
from process_apis.contracts.views import propagation as present_propagation
from process_apis.ledger.store import invoice_status_of

__all__ = ["ContractFilter", "find_contract_summary", "get_contract", "list_contracts", "milestones_by_contract"]


class ContractFilter(PageQuery):
    customer: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$", description="Customer external id"
    )
    status: Literal["active", "blocked"] | None = None


async def get_contract(conn: Connection, contract_id: uuid.UUID, principal: Principal) -> ContractDetail:
    c = await conn.fetchrow(
        f"""select c.*, cu.external_id as customer_external_id, cu.name as customer_name
           from contract c join customer cu on cu.id = c.customer_id
           where c.id = $1 and {scope_clause(2)}""",
        contract_id,
        *principal.scope_args(),
    )
    if c is None:
        raise NotFound(f"contract {contract_id} does not exist")
    versions = await conn.fetch("select * from contract_version where contract_id = $1 order by version", contract_id)
    propagation = await conn.fetch(
        "select * from propagation where contract_id = $1 order by version, target", contract_id
    )
    rates = await conn.fetch(
        """select role, rate, effective_from, version from rate_card_entry where contract_id = $1
           order by role, effective_from, version""",
        contract_id,
    )
    allowances = await conn.fetch(
        """select category, cap from expense_category e
           where contract_id = $1 and version = (select current_version from contract where id = $1)
           order by category""",
        contract_id,
    )
    milestones = (await milestones_by_contract(conn, [contract_id], principal)).get(contract_id, [])
    exceptions = await conn.fetch(
        """select id, code, detail, status from exception
           where subject_type = 'contract' and subject_id = $1 and status <> 'resolved' order by created_at""",
        str(contract_id),
    )
    currency = c["currency"]
    by_version: dict[int, list[PropagationRow]] = {}
    for p in propagation:
        by_version.setdefault(p["version"], []).append(
            PropagationRow(
                p["target"], p["status"], p["attempts"], p["last_error"], p["confirmed_at"], p["confirmed_version"]
            )
        )
    latest = versions[-1]
    return ContractDetail(
        id=c["id"],
        source=c["source"],
        external_id=c["external_id"],
        number=c["number"],
        status=c["status"],
        customer=CustomerView(external_id=c["customer_external_id"], name=c["customer_name"]),
        legal_entity=c["legal_entity"],
        currency=currency,
        billing_model=c["billing_model"],
        project_id=c["project_id"],
        version=c["current_version"],
        total_value=to_str(latest["total_value"], currency),
        start_date=latest["start_date"],
        end_date=latest["end_date"],
        time_cap=to_str(latest["time_cap"], currency),
        tax=TaxTermsView(jurisdiction=latest["tax_jurisdiction"], customer_tax_id=latest["customer_tax_id"]),
        rate_card=[
            RateView(
                role=r["role"],
                rate=amount(r["rate"], currency),
                effective_from=r["effective_from"],
                version=r["version"],
            )
            for r in rates
        ],
        reimbursable_expenses=[
            ExpenseAllowanceView(category=a["category"], cap=to_str(a["cap"], currency)) for a in allowances
        ],
        propagation=present_propagation(by_version.get(c["current_version"], [])),
        versions=[
            ContractVersionView(
                version=v["version"],
                effective_date=v["effective_date"],
                reason=v["reason"],
                total_value=to_str(v["total_value"], currency),
                end_date=v["end_date"],
                time_cap=to_str(v["time_cap"], currency),
                customer_tax_id=v["customer_tax_id"],
                created_at=v["created_at"],
                propagation=present_propagation(by_version.get(v["version"], [])),
            )
            for v in versions
        ],
        milestones=milestones,
        exceptions=[
            OpenException(id=e["id"], code=e["code"], detail=e["detail"], status=e["status"]) for e in exceptions
        ],
        created_at=c["created_at"],
        updated_at=c["updated_at"],
    )


async def milestones_by_contract(
    conn: Connection, contract_ids: list[uuid.UUID], principal: Principal
) -> dict[uuid.UUID, list[MilestoneView]]:
    """The latest version's milestone plan of each visible contract, with acceptance and invoicing state."""
    rows = await conn.fetch(
        f"""select m.contract_id, c.currency, m.key, m.name, m.amount, m.due_date, m.depends_on, a.accepted_at,
                  a.amount as accepted_amount, a.transaction_id
           from contract c
           join customer cu on cu.id = c.customer_id
           join milestone m on m.contract_id = c.id and m.version = c.current_version
           left join milestone_acceptance a on a.contract_id = m.contract_id and a.key = m.key
           where c.id = any($1) and {scope_clause(2)}
           order by m.contract_id, m.due_date nulls last, m.key""",
        contract_ids,
        *principal.scope_args(),
    )
    invoiced = await invoice_status_of(conn, [m["transaction_id"] for m in rows if m["transaction_id"]])
    plans: dict[uuid.UUID, list[MilestoneView]] = {}
    for m in rows:
        status = _milestone_status(m["accepted_at"], invoiced.get(m["transaction_id"]))
        reason = "awaiting_milestone_acceptance" if status == "pending" else None
        plans.setdefault(m["contract_id"], []).append(
            MilestoneView(
                key=m["key"],
                name=m["name"],
                amount=amount(m["accepted_amount"] if m["accepted_at"] else m["amount"], m["currency"]),
                due_date=m["due_date"],
                depends_on=list(m["depends_on"]),
                status=status,
                accepted_at=m["accepted_at"],
                reason=reason,
                release="the client accepts it (POST .../acceptance)" if reason else None,
            )
        )
    return plans


def _milestone_status(accepted_at: Any, invoice_status: str | None) -> Literal["pending", "accepted", "invoiced"]:
    if accepted_at is None:
        return "pending"
    if invoice_status in ("queued", "posting", "posted"):
        return "invoiced"
    return "accepted"


async def list_contracts(conn: Connection, principal: Principal, q: ContractFilter) -> ContractPage:
    after_at, after_id = after_keys(q.after)
    rows = await conn.fetch(
        f"""{_SUMMARY}
           where ($1::text is null or cu.external_id = $1)
             and ($2::text is null or c.status = $2)
             and ($3::timestamptz is null or (c.created_at, c.id) > ($3, $4::uuid))
             and {scope_clause(6)}
           order by c.created_at, c.id limit $5""",
        q.customer,
        q.status,
        after_at,
        after_id,
        q.limit + 1,
        *principal.scope_args(),
    )
    page, next_cursor = page_of(rows, q.limit)
    return ContractPage(items=[_summary(r) for r in page], next_cursor=next_cursor)


async def find_contract_summary(
    conn: Connection, contract_id: uuid.UUID, principal: Principal
) -> ContractSummary | None:
    """The list view of one contract; None when it does not exist or is outside the principal's scope."""
    row = await conn.fetchrow(f"{_SUMMARY} where c.id = $1 and {scope_clause(2)}", contract_id, *principal.scope_args())
    return _summary(row) if row else None


_SUMMARY = """select c.id, c.number, c.status, c.currency, c.billing_model, c.current_version, c.project_id,
                  c.legal_entity, cu.external_id as customer_external_id, c.created_at
           from contract c join customer cu on cu.id = c.customer_id"""


def _summary(r: Any) -> ContractSummary:
    return ContractSummary(
        id=r["id"],
        number=r["number"],
        status=r["status"],
        currency=r["currency"],
        billing_model=r["billing_model"],
        version=r["current_version"],
        project_id=r["project_id"],
        legal_entity=r["legal_entity"],
        customer_external_id=r["customer_external_id"],
        created_at=r["created_at"],
    )
