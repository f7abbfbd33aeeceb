"""Invoice and money read models, each filtered by the principal in SQL (see ``app.access``)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from app.access import Principal, scope_clause
from app.db import Connection
from app.errors import NotFound
from app.money import to_str
from app.pagination import PageQuery, after_keys, page_of
from process_apis.billing.views import InvoiceDetail, InvoiceLineView, InvoicePage, InvoiceSummary
from process_apis.ledger.store import ContractMoney, contract_money

__all__ = [
    "ContractMoney",
    "InvoiceFilter",
    "contract_money",
    "get_invoice",
    "invoice_summaries",
    "invoices_by_contract",
    "list_invoices",
]

# Invoices joined to what scopes them: their contract and its customer.
_SCOPED_INVOICE = "invoice i join contract c on c.id = i.contract_id join customer cu on cu.id = c.customer_id"


class InvoiceFilter(PageQuery):
    contract_id: uuid.UUID | None = None
    status: Literal["draft", "queued", "posting", "posted", "blocked", "failed"] | None = None


def _summary(r: Any) -> dict[str, Any]:
    currency = r["currency"]
    return {
        "id": r["id"],
        "contract_id": r["contract_id"],
        "kind": r["kind"],
        "currency": currency,
        "invoice_date": r["invoice_date"],
        "net": to_str(r["net"], currency),
        "tax": to_str(r["tax"], currency),
        "total": to_str(r["total"], currency),
        "status": r["status"],
        "erp_ref": r["erp_ref"],
        "posted_at": r["posted_at"],
        "codes": list(r["codes"]),
    }


async def invoice_summaries(conn: Connection, ids: list[uuid.UUID], principal: Principal) -> list[InvoiceSummary]:
    rows = await conn.fetch(
        f"select i.* from {_SCOPED_INVOICE} where i.id = any($1) and {scope_clause(2)} order by i.created_at, i.id",
        ids,
        *principal.scope_args(),
    )
    return [InvoiceSummary(**_summary(r)) for r in rows]


async def get_invoice(conn: Connection, invoice_id: uuid.UUID, principal: Principal) -> InvoiceDetail:
    row = await conn.fetchrow(
        f"select i.* from {_SCOPED_INVOICE} where i.id = $1 and {scope_clause(2)}",
        invoice_id,
        *principal.scope_args(),
    )
    if row is None:
        raise NotFound(f"invoice {invoice_id} does not exist", "UNKNOWN_INVOICE")
    lines = await conn.fetch("select * from invoice_line where invoice_id = $1 order by line_no", invoice_id)
    currency = row["currency"]
    return InvoiceDetail(
        **_summary(row),
        billing_run_id=row["billing_run_id"],
        tax_treatment=row["tax_treatment"],
        notes=row["notes"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        correlation_id=row["correlation_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        lines=[
            InvoiceLineView(
                line_no=line["line_no"],
                kind=line["kind"],
                key=line["key"],
                description=line["description"],
                quantity=to_str(line["quantity"]),
                unit_price=to_str(line["unit_price"]),
                net=to_str(line["net"], currency),
                tax_rate=to_str(line["tax_rate"]),
                tax=to_str(line["tax"], currency),
                total=to_str(line["total"], currency),
                transaction_ids=list(line["transaction_ids"]),
            )
            for line in lines
        ],
    )


async def list_invoices(conn: Connection, principal: Principal, q: InvoiceFilter) -> InvoicePage:
    after_at, after_id = after_keys(q.after)
    rows = await conn.fetch(
        f"""select i.* from {_SCOPED_INVOICE}
           where ($1::uuid is null or i.contract_id = $1) and ($2::text is null or i.status = $2)
             and ($3::timestamptz is null or (i.created_at, i.id) > ($3, $4::uuid))
             and {scope_clause(6)}
           order by i.created_at, i.id limit $5""",
        q.contract_id,
        q.status,
        after_at,
        after_id,
        q.limit + 1,
        *principal.scope_args(),
    )
    page, next_cursor = page_of(rows, q.limit)
    return InvoicePage(items=[InvoiceSummary(**_summary(r)) for r in page], next_cursor=next_cursor)


async def invoices_by_contract(
    conn: Connection, contract_ids: list[uuid.UUID], principal: Principal
) -> dict[uuid.UUID, list[InvoiceSummary]]:
    rows = await conn.fetch(
        f"""select i.* from {_SCOPED_INVOICE} where i.contract_id = any($1) and {scope_clause(2)}
           order by i.contract_id, i.created_at, i.id""",
        contract_ids,
        *principal.scope_args(),
    )
    found: dict[uuid.UUID, list[InvoiceSummary]] = {}
    for r in rows:
        found.setdefault(r["contract_id"], []).append(InvoiceSummary(**_summary(r)))
    return found
