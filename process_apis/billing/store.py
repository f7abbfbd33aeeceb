"""SQL for billing: invoices and lines, set-based (the ledger claims and links the transactions)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from app.db import Connection, dumps
from app.observability import correlation_id
from process_apis.billing.rules import DraftInvoice
from process_apis.ledger.invoicing import mark_invoiced


async def insert_draft_invoices(
    conn: Connection, run_id: uuid.UUID, invoice_date: date, drafts: list[DraftInvoice]
) -> None:
    """Write every invoice of a run, its lines and its transactions' link in three statements."""
    await conn.execute(
        """insert into invoice (id, billing_run_id, contract_id, kind, currency, invoice_date, net, status,
                                correlation_id)
           select d.id, $1, d.contract_id, d.kind, d.currency, $2, d.net, 'draft', $3
           from unnest($4::uuid[], $5::uuid[], $6::text[], $7::text[], $8::numeric[])
                as d(id, contract_id, kind, currency, net)""",
        run_id,
        invoice_date,
        correlation_id(),
        [d.id for d in drafts],
        [d.contract_id for d in drafts],
        [d.kind for d in drafts],
        [d.currency for d in drafts],
        [d.net for d in drafts],
    )
    lines = [(d.id, no, line) for d in drafts for no, line in enumerate(d.lines, start=1)]
    await conn.execute(
        """insert into invoice_line (invoice_id, line_no, kind, key, description, quantity, unit_price, net,
                                     transaction_ids)
           select l.invoice_id, l.no, l.kind, l.key, l.description, l.quantity, l.unit_price, l.net,
                  array(select jsonb_array_elements_text(l.ids::jsonb))::uuid[]
           from unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], $6::numeric[], $7::numeric[],
                       $8::numeric[], $9::text[])
                as l(invoice_id, no, kind, key, description, quantity, unit_price, net, ids)""",
        [invoice_id for invoice_id, _, _ in lines],
        [no for _, no, _ in lines],
        [line.kind for _, _, line in lines],
        [line.key for _, _, line in lines],
        [line.description for _, _, line in lines],
        [line.quantity for _, _, line in lines],
        [line.unit_price for _, _, line in lines],
        [line.net for _, _, line in lines],
        [dumps(line.transaction_ids) for _, _, line in lines],
    )
    await mark_invoiced(
        conn, [(uuid.UUID(tid), invoice_id) for invoice_id, _, line in lines for tid in line.transaction_ids]
    )


async def tax_context(conn: Connection, invoice_id: uuid.UUID) -> Any:
    """What the tax quote needs: the seller's country and the newest version's tax terms."""
    return await conn.fetchrow(
        """select i.id, i.status, i.currency, i.contract_id, le.country as seller_country,
                  v.tax_jurisdiction, v.customer_tax_id
           from invoice i
           join contract c on c.id = i.contract_id
           join legal_entity le on le.code = c.legal_entity
           join contract_version v on v.contract_id = c.id and v.version = c.current_version
           where i.id = $1""",
        invoice_id,
    )


async def invoice_lines(conn: Connection, invoice_id: uuid.UUID) -> list[Any]:
    return await conn.fetch("select * from invoice_line where invoice_id = $1 order by line_no", invoice_id)


async def apply_tax(
    conn: Connection,
    invoice_id: uuid.UUID,
    line_nos: list[int],
    rates: list[Any],
    taxes: list[Any],
    treatment: str,
    note: str | None,
) -> bool:
    updated = await conn.fetchval(
        """update invoice set status = 'queued', codes = '{}', tax_treatment = $2, notes = $3,
                  tax = (select sum(t) from unnest($4::numeric[]) t),
                  total = net + (select sum(t) from unnest($4::numeric[]) t), updated_at = now()
           where id = $1 and status in ('draft', 'blocked') returning true""",
        invoice_id,
        treatment,
        note,
        taxes,
    )
    if not updated:
        return False
    await conn.execute(
        """update invoice_line l set tax_rate = x.rate, tax = x.tax, total = l.net + x.tax
           from unnest($2::int[], $3::numeric[], $4::numeric[]) as x(no, rate, tax)
           where l.invoice_id = $1 and l.line_no = x.no""",
        invoice_id,
        line_nos,
        rates,
        taxes,
    )
    return True


async def block_invoice(conn: Connection, invoice_id: uuid.UUID, code: str) -> bool:
    updated = await conn.fetchval(
        """update invoice set status = 'blocked', codes = array[$2], tax = null, total = null, updated_at = now()
           where id = $1 and status in ('draft', 'blocked') returning true""",
        invoice_id,
        code,
    )
    await conn.execute(
        "update invoice_line set tax_rate = null, tax = null, total = null where invoice_id = $1", invoice_id
    )
    return bool(updated)


async def posting_context(conn: Connection, invoice_id: uuid.UUID) -> Any:
    return await conn.fetchrow(
        """select i.*, c.number as contract_number, c.legal_entity, c.external_id as contract_external_id,
                  cu.external_id as customer_external_id
           from invoice i join contract c on c.id = i.contract_id join customer cu on cu.id = c.customer_id
           where i.id = $1""",
        invoice_id,
    )
