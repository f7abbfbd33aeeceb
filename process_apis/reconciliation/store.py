"""SQL of reconciliations."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from app.access import Principal, scope_clause
from app.db import Connection
from process_apis.reconciliation.rules import Mismatch, PostedInvoice

__all__ = ["contract_rows", "posted_invoices", "reconciliation", "write_reconciliation"]


async def posted_invoices(conn: Connection, as_of: date) -> list[PostedInvoice]:
    rows = await conn.fetch(
        """select id, contract_id, kind, currency, coalesce(total, net) as total from invoice
           where status = 'posted' and invoice_date <= $1 order by id""",
        as_of,
    )
    return [PostedInvoice(r["id"], r["contract_id"], r["kind"], r["currency"], r["total"]) for r in rows]


async def write_reconciliation(
    conn: Connection,
    reconciliation_id: uuid.UUID,
    as_of: date,
    checked: int,
    mismatches: Sequence[Mismatch],
    erp_posted: Mapping[uuid.UUID, Decimal],
    actor: str | None,
    correlation_id: str | None,
) -> None:
    """The run, its mismatches, and one row per contract with invoices or billing money: set-based."""
    await conn.execute(
        "insert into reconciliation (id, as_of, checked, actor, correlation_id) values ($1, $2, $3, $4, $5)",
        reconciliation_id, as_of, checked, actor, correlation_id,
    )  # fmt: skip
    await conn.execute(
        """insert into reconciliation_mismatch (reconciliation_id, invoice_id, kind, detail)
           select $1, m.invoice_id, m.kind, m.detail from unnest($2::uuid[], $3::text[], $4::text[])
                  as m(invoice_id, kind, detail)
           on conflict do nothing""",
        reconciliation_id, [m.invoice_id for m in mismatches], [m.kind for m in mismatches],
        [m.detail for m in mismatches],
    )  # fmt: skip
    await conn.execute(
        """with erp as (select * from unnest($3::uuid[], $4::numeric[]) as x(contract_id, net)),
                inv as (
                    select contract_id,
                           sum(net) filter (where status = 'posted') as billed,
                           sum(net) filter (where status = 'posted' and feedback_done_at is not null) as told
                    from invoice where invoice_date <= $2 group by contract_id),
                money as (select distinct contract_id from billing_transaction)
           insert into reconciliation_contract
                  (reconciliation_id, contract_id, currency, crm_value, psa_billed, erp_posted, billed, unbilled)
           select $1, c.id, c.currency, v.total_value, coalesce(inv.told, 0), coalesce(erp.net, 0),
                  coalesce(inv.billed, 0), u.amount
           from contract c
           join contract_version v on v.contract_id = c.id and v.version = c.current_version
           left join inv on inv.contract_id = c.id
           left join erp on erp.contract_id = c.id
           cross join lateral (
               select coalesce(sum(bt.amount), 0) as amount
               from billing_transaction bt left join invoice i on i.id = bt.invoice_id
               where bt.contract_id = c.id and bt.billing = 'billable' and bt.status in ('unbilled', 'invoiced')
                 and (i.id is null or i.status not in ('queued', 'posting', 'posted'))) u
           where c.id in (select contract_id from inv union select contract_id from money)""",
        reconciliation_id, as_of, list(erp_posted), list(erp_posted.values()),
    )  # fmt: skip


async def reconciliation(conn: Connection, reconciliation_id: uuid.UUID, principal: Principal) -> Any:
    """The run with its mismatches and contract rows (only the contracts this key may see), or None."""
    run = await conn.fetchrow("select * from reconciliation where id = $1", reconciliation_id)
    if run is None:
        return None
    mismatches = await conn.fetch(
        f"""select m.invoice_id, m.kind, m.detail from reconciliation_mismatch m
            join invoice i on i.id = m.invoice_id join contract c on c.id = i.contract_id
            join customer cu on cu.id = c.customer_id
            where m.reconciliation_id = $1 and {scope_clause(2)} order by m.invoice_id, m.kind""",
        reconciliation_id, *principal.scope_args(),
    )  # fmt: skip
    contracts = await contract_rows(conn, principal, reconciliation_id=reconciliation_id)
    return run, mismatches, contracts


async def contract_rows(
    conn: Connection,
    principal: Principal,
    *,
    reconciliation_id: uuid.UUID | None = None,
    contract_id: uuid.UUID | None = None,
) -> list[Any]:
    """Contract rows of one run, or the newest row of one contract."""
    return list(
        await conn.fetch(
            f"""select distinct on (r.contract_id) r.*, x.as_of, x.created_at as reconciled_at
                from reconciliation_contract r join reconciliation x on x.id = r.reconciliation_id
                join contract c on c.id = r.contract_id join customer cu on cu.id = c.customer_id
                where ($1::uuid is null or r.reconciliation_id = $1) and ($2::uuid is null or r.contract_id = $2)
                  and {scope_clause(3)}
                order by r.contract_id, x.created_at desc""",
            reconciliation_id,
            contract_id,
            *principal.scope_args(),
        )  # fmt: skip
    )
