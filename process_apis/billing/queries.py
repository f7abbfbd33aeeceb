"""Invoice read models."""

from __future__ import annotations

import uuid
from typing import Any

from app.db import Connection
from app.errors import NotFound
from app.money import to_str
from app.pagination import after_keys, page_of


def _summary(r: Any) -> dict[str, Any]:
    currency = r["currency"]
    return {
        "id": str(r["id"]),
        "contract_id": str(r["contract_id"]),
        "kind": r["kind"],
        "currency": currency,
        "invoice_date": r["invoice_date"].isoformat(),
        "net": to_str(r["net"], currency),
        "tax": to_str(r["tax"], currency),
        "total": to_str(r["total"], currency),
        "status": r["status"],
        "erp_ref": r["erp_ref"],
        "posted_at": r["posted_at"].isoformat() if r["posted_at"] else None,
        "codes": list(r["codes"]),
    }


async def invoice_summaries(conn: Connection, ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    rows = await conn.fetch("select * from invoice where id = any($1) order by created_at, id", ids)
    return [_summary(r) for r in rows]


async def get_invoice(conn: Connection, invoice_id: uuid.UUID, customer_scope: str | None = None) -> dict[str, Any]:
    row = await conn.fetchrow(
        """select i.*, cu.external_id as customer_external_id from invoice i
           join contract c on c.id = i.contract_id join customer cu on cu.id = c.customer_id where i.id = $1""",
        invoice_id,
    )
    if row is None or (customer_scope is not None and row["customer_external_id"] != customer_scope):
        raise NotFound(f"invoice {invoice_id} does not exist", "UNKNOWN_INVOICE")
    lines = await conn.fetch("select * from invoice_line where invoice_id = $1 order by line_no", invoice_id)
    currency = row["currency"]
    invoice = _summary(row)
    invoice.update(
        {
            "billing_run_id": str(row["billing_run_id"]) if row["billing_run_id"] else None,
            "tax_treatment": row["tax_treatment"],
            "notes": row["notes"],
            "attempts": row["attempts"],
            "last_error": row["last_error"],
            "correlation_id": row["correlation_id"],
            "created_at": row["created_at"].isoformat(),
            "updated_at": row["updated_at"].isoformat(),
            "lines": [
                {
                    "line_no": line["line_no"],
                    "kind": line["kind"],
                    "key": line["key"],
                    "description": line["description"],
                    "quantity": to_str(line["quantity"]),
                    "unit_price": to_str(line["unit_price"]),
                    "net": to_str(line["net"], currency),
                    "tax_rate": to_str(line["tax_rate"]),
                    "tax": to_str(line["tax"], currency),
                    "total": to_str(line["total"], currency),
                    "transaction_ids": [str(t) for t in line["transaction_ids"]],
                }
                for line in lines
            ],
        }
    )
    return invoice


async def list_invoices(
    conn: Connection,
    contract_id: uuid.UUID | None,
    status: str | None,
    limit: int,
    after: str | None,
    customer_scope: str | None = None,
) -> dict[str, Any]:
    after_at, after_id = after_keys(after)
    rows = await conn.fetch(
        """select i.* from invoice i join contract c on c.id = i.contract_id join customer cu on cu.id = c.customer_id
           where ($1::uuid is null or i.contract_id = $1) and ($2::text is null or i.status = $2)
             and ($3::text is null or cu.external_id = $3)
             and ($4::timestamptz is null or (i.created_at, i.id) > ($4, $5::uuid))
           order by i.created_at, i.id limit $6""",
        contract_id,
        status,
        customer_scope,
        after_at,
        after_id,
        limit + 1,
    )
    page, next_cursor = page_of(rows, limit)
    return {"items": [_summary(r) for r in page], "next_cursor": next_cursor}


async def contract_money(conn: Connection, contract_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """Billed / unbilled / held per contract, in one statement for any number of contracts.

    billed = on invoices queued, posting or posted; unbilled = billable and not on such an
    invoice (blocked invoices included); held = held amounts that have a value.
    """
    rows = await conn.fetch(
        """select c.id, c.currency,
                  coalesce(sum(bt.amount) filter (where bt.billing = 'billable'
                           and i.status in ('queued', 'posting', 'posted')), 0) as billed,
                  coalesce(sum(bt.amount) filter (where bt.billing = 'billable' and bt.status <> 'superseded'
                           and (i.id is null or i.status not in ('queued', 'posting', 'posted'))), 0) as unbilled,
                  coalesce(sum(bt.amount) filter (where bt.billing = 'held' and bt.status = 'held'), 0) as held
           from contract c
           left join billing_transaction bt on bt.contract_id = c.id
           left join invoice i on i.id = bt.invoice_id
           where c.id = any($1)
           group by c.id, c.currency""",
        contract_ids,
    )
    return {
        r["id"]: {
            "currency": r["currency"],
            "billed": to_str(r["billed"], r["currency"]),
            "unbilled": to_str(r["unbilled"], r["currency"]),
            "held": to_str(r["held"], r["currency"]),
        }
        for r in rows
    }


async def invoices_by_contract(
    conn: Connection, contract_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    rows = await conn.fetch(
        "select * from invoice where contract_id = any($1) order by contract_id, created_at, id", contract_ids
    )
    found: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for r in rows:
        found.setdefault(r["contract_id"], []).append(_summary(r))
    return found
