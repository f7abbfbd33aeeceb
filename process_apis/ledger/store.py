"""SQL of the ledger: the only module that writes ``billing_transaction`` (with ``invoicing`` for
the billing run's claims). Reads return the frozen records of ``ledger.records``."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from app.access import Principal, scope_clause
from app.db import Connection, insert_rows
from app.observability import correlation_id
from process_apis.ledger.records import EntryBook, EntryContent, Pending, RateStart, WorkTerms
from process_apis.ledger.settlement import Plan

__all__ = [
    "Balances",
    "Window",
    "pool_window",
    "Lineage",
    "transaction_lineage",
    "ContractMoney",
    "TransactionRow",
    "contract_money",
    "entry_transactions",
    "invoice_status_of",
    "pending_books",
    "Rejudgeable",
    "content_of",
    "contract_balances",
    "rejudgeable",
    "entry_books",
    "load_terms",
    "pool_invoiced",
    "write_plan",
]


@dataclass(frozen=True)
class Balances:
    unbilled: Decimal  # billable, not on a queued, posting or posted invoice (a blocked one included)
    held: Decimal  # held amounts that have a value


async def contract_balances(conn: Connection, contract_id: uuid.UUID) -> Balances:
    row = await conn.fetchrow(
        """select coalesce(sum(bt.amount) filter (
                      where bt.billing = 'billable' and bt.status in ('unbilled', 'invoiced')
                        and (i.id is null or i.status not in ('queued', 'posting', 'posted'))), 0) as unbilled,
                  coalesce(sum(bt.amount) filter (where bt.status = 'held'), 0) as held
           from billing_transaction bt left join invoice i on i.id = bt.invoice_id
           where bt.contract_id = $1""",
        contract_id,
    )
    return Balances(row["unbilled"], row["held"])


async def load_terms(
    conn: Connection, contract_ids: Iterable[uuid.UUID], share_lock_for: Principal | None = None
) -> dict[uuid.UUID, WorkTerms]:
    """Each contract's newest term, caps and categories, and every rate of every version: one round trip.

    ``share_lock_for``: only the contracts that key may see, share-locked (in id order) by the same
    statement. A share lock lets batches run side by side, while an amendment, an activation or a
    billing run (which lock the row for update) waits for them, and they for it.
    """
    scoped, lock, args = "", "", ()  # type: tuple[str, str, tuple[object, ...]]
    if share_lock_for is not None:
        scoped = f"and exists (select 1 from customer cu where cu.id = c.customer_id and {scope_clause(2)})"
        lock, args = "order by c.id for share of c", share_lock_for.scope_args()
    rows = await conn.fetch(
        f"""select c.id, c.currency, c.billing_model, c.status, v.start_date, v.end_date, v.time_cap,
                  (select coalesce(json_agg(json_build_object('role', r.role, 'rate', r.rate::text,
                                   'start', r.effective_from, 'version', r.version)), '[]')
                   from rate_card_entry r where r.contract_id = c.id) as rates,
                  (select coalesce(json_agg(json_build_object('category', e.category, 'cap', e.cap::text)), '[]')
                   from expense_category e where e.contract_id = c.id and e.version = c.current_version) as allowances
           from contract c join contract_version v on v.contract_id = c.id and v.version = c.current_version
           where c.id = any($1::uuid[]) {scoped} {lock}""",
        list(contract_ids),
        *args,
    )
    return {
        r["id"]: WorkTerms(
            contract_id=r["id"],
            currency=r["currency"],
            billing_model=r["billing_model"],
            blocked=r["status"] == "blocked",
            start_date=r["start_date"],
            end_date=r["end_date"],
            time_cap=r["time_cap"],
            allowances={a["category"]: _dec(a["cap"]) for a in r["allowances"]},
            rates=tuple(
                RateStart(x["role"], Decimal(x["rate"]), date.fromisoformat(x["start"]), x["version"])
                for x in r["rates"]
            ),
        )
        for r in rows
    }


def _dec(text: str | None) -> Decimal | None:
    return Decimal(text) if text is not None else None


# A pending transaction travels as a row of four arrays (decoded natively, no JSON on the hot path).


def _book(r: Any) -> EntryBook:
    return EntryBook(
        id=r["id"],
        kind=r["kind"],
        contract_id=r["contract_id"],
        source=r["source"],
        external_id=r["external_id"],
        service_date=r["service_date"],
        role=r["role"],
        category=r["category"],
        rate=r["rate"],
        billing=r["billing"],
        code=r["code"],
        value=r["value"],
        adjusting=r["adjusting"],
        version=r["current_version"],
        invoiced=r["invoiced"],
        has_invoiced=r["has_invoiced"],
        pending=tuple(map(Pending, r["p_ids"], r["p_kinds"], r["p_amounts"], r["p_billings"])) if r["p_ids"] else (),
    )


# Each entry's money in one pass over its transactions: invoiced sum, and the pending ones as four
# arrays (decoded natively by asyncpg: no JSON on the hot path).
_BOOKS = """select e.id, e.kind, e.current_version, e.contract_id, e.source, e.external_id, e.service_date,
                  e.role, e.category, e.rate, e.billing, e.code, e.value, e.adjusting,
                  coalesce(t.invoiced, 0) as invoiced, coalesce(t.has_invoiced, false) as has_invoiced,
                  t.p_ids, t.p_kinds, t.p_amounts, t.p_billings
           from t join work_entry e on e.id = t.entry_id"""
_AGGREGATE = """select t.entry_id,
                      coalesce(sum(t.amount) filter (where t.invoice_id is not null and t.billing = 'billable'), 0)
                        as invoiced,
                      bool_or(t.invoice_id is not null) as has_invoiced,
                      array_agg(t.id order by t.created_at, t.id) filter (where t.invoice_id is null
                                and t.status in ('unbilled', 'held')) as p_ids,
                      array_agg(t.kind order by t.created_at, t.id) filter (where t.invoice_id is null
                                and t.status in ('unbilled', 'held')) as p_kinds,
                      array_agg(t.amount order by t.created_at, t.id) filter (where t.invoice_id is null
                                and t.status in ('unbilled', 'held')) as p_amounts,
                      array_agg(t.billing order by t.created_at, t.id) filter (where t.invoice_id is null
                                and t.status in ('unbilled', 'held')) as p_billings
               from billing_transaction t"""


async def entry_books(conn: Connection, entry_ids: list[uuid.UUID]) -> dict[uuid.UUID, EntryBook]:
    """The stored money of these entries: judgement, invoiced sum, pending transactions (one scan, grouped)."""
    if not entry_ids:
        return {}
    rows = await conn.fetch(
        f"""with t as ({_AGGREGATE} where t.entry_id = any($1::uuid[]) group by t.entry_id)
            select e.id, e.kind, e.current_version, e.contract_id, e.source, e.external_id, e.service_date,
                   e.role, e.category, e.rate, e.billing, e.code, e.value, e.adjusting,
                   coalesce(t.invoiced, 0) as invoiced, coalesce(t.has_invoiced, false) as has_invoiced,
                   t.p_ids, t.p_kinds, t.p_amounts, t.p_billings
            from work_entry e left join t on t.entry_id = e.id
            where e.id = any($1::uuid[])""",
        entry_ids,
    )
    return {r["id"]: _book(r) for r in rows}


async def pending_books(
    conn: Connection, contract_ids: list[uuid.UUID], exclude: Iterable[uuid.UUID]
) -> list[EntryBook]:
    """Every other entry of these contracts with money pending (not on any invoice), driven by the
    partial index of pending money: what a billing run has cleared is never read again."""
    rows = await conn.fetch(
        f"""with pending as (
                select distinct t.entry_id from billing_transaction t
                where t.contract_id = any($1::uuid[]) and t.invoice_id is null and t.status in ('unbilled', 'held')
                  and t.entry_id is not null),
            t as ({_AGGREGATE} join pending p on p.entry_id = t.entry_id group by t.entry_id)
            {_BOOKS}""",
        contract_ids,
    )
    skip = set(exclude)
    return [_book(r) for r in rows if r["id"] not in skip]


async def pool_invoiced(conn: Connection, contract_ids: Iterable[uuid.UUID]) -> dict[tuple[uuid.UUID, str], Decimal]:
    """Billable money of each (contract, pool) already on an invoice (a blocked one included): what a cap has spent."""
    rows = await conn.fetch(
        """select t.contract_id,
                  case when t.subject_type = 'time_entry' then 'time' else 'expense:' || t.category end as pool,
                  sum(t.amount) as amount
           from billing_transaction t
           where t.contract_id = any($1::uuid[]) and t.status = 'invoiced' and t.billing = 'billable'
             and t.entry_id is not null
           group by 1, 2""",
        list(contract_ids),
    )
    return {(r["contract_id"], r["pool"]): r["amount"] for r in rows}


_TXN_COLUMNS = [
    "id", "contract_id", "entry_id", "subject_version", "kind", "subject_type", "subject_id", "service_date",
    "role", "rate", "quantity", "category", "amount", "currency", "cost_amount", "billing", "status", "reason",
    "is_adjustment", "is_release", "correlation_id",
]  # fmt: skip


async def write_plan(conn: Connection, plan: Plan, stored_by_caller: set[uuid.UUID]) -> None:
    """Write a settlement: new transactions by COPY, changed ones and superseded ones in one statement
    each, entries whose state moved (but those the caller writes itself), and a release event each."""
    cid = correlation_id()
    if plan.inserts:
        await insert_rows(
            conn,
            "billing_transaction",
            _TXN_COLUMNS,
            [
                (
                    t.id,
                    t.contract_id,
                    t.entry_id,
                    t.entry_version,
                    t.kind,
                    t.subject_type,
                    str(t.entry_id),
                    t.service_date,
                    t.role,
                    t.rate,
                    t.quantity,
                    t.category,
                    t.amount,
                    t.currency,
                    t.cost_amount,
                    t.billing,
                    "unbilled" if t.billing == "billable" else "held",
                    t.reason,
                    t.is_adjustment,
                    t.is_release,
                    cid,
                )  # fmt: skip
                for t in plan.inserts
            ],
        )
    if plan.updates:
        u = plan.updates
        await conn.execute(
            """update billing_transaction t
                  set amount = x.amount, billing = x.billing, subject_version = x.version,
                      status = case when x.billing = 'billable' then 'unbilled' else 'held' end,
                      reason = x.reason, service_date = x.service_date, role = x.role, rate = x.rate,
                      quantity = x.quantity, category = x.category, correlation_id = $11, updated_at = now()
               from unnest($1::uuid[], $2::numeric[], $3::text[], $4::text[], $5::date[], $6::text[],
                           $7::numeric[], $8::numeric[], $9::text[], $10::int[])
                    as x(id, amount, billing, reason, service_date, role, rate, quantity, category, version)
               where t.id = x.id and t.invoice_id is null""",
            [x.id for x in u], [x.amount for x in u], [x.billing for x in u], [x.reason for x in u],
            [x.service_date for x in u], [x.role for x in u], [x.rate for x in u], [x.quantity for x in u],
            [x.category for x in u], [x.entry_version for x in u], cid,
        )  # fmt: skip
    if plan.superseded:
        await conn.execute(
            """update billing_transaction set status = 'superseded', updated_at = now()
               where id = any($1::uuid[]) and invoice_id is null""",
            plan.superseded,
        )
    moved = [s for s in plan.settled.values() if s.changed and s.entry_id not in stored_by_caller]
    if moved:
        await conn.execute(
            """update work_entry e
                  set billing = x.billing, code = x.code, value = x.value, adjusting = x.adjusting,
                      rate = case when x.judged then x.rate else e.rate end,
                      fx_rate = case when x.judged then x.fx_rate else e.fx_rate end,
                      converted_amount = case when x.judged then x.converted else e.converted_amount end,
                      cost_amount = case when x.judged then x.cost else e.cost_amount end, updated_at = now()
               from unnest($1::uuid[], $2::text[], $3::text[], $4::numeric[], $5::bool[], $6::bool[],
                           $7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[])
                    as x(id, billing, code, value, adjusting, judged, rate, fx_rate, converted, cost)
               where e.id = x.id""",
            [s.entry_id for s in moved], [s.billing for s in moved], [s.code for s in moved],
            [s.value for s in moved], [s.adjusting for s in moved], [s.priced is not None for s in moved],
            [s.priced.rate if s.priced else None for s in moved],
            [s.priced.fx_rate if s.priced else None for s in moved],
            [s.priced.converted if s.priced else None for s in moved],
            [s.priced.cost if s.priced else None for s in moved],
        )  # fmt: skip
    if plan.released:
        r = plan.released
        await conn.execute(
            """insert into outbox_event (event_type, subject_type, subject_id, payload, correlation_id)
               select 'transaction.released', 'billing_transaction', x.id::text,
                      jsonb_build_object('entry_id', x.entry_id, 'external_id', x.external_id,
                                         'amount', x.amount::text), $5
               from unnest($1::uuid[], $2::uuid[], $3::text[], $4::numeric[])
                    as x(id, entry_id, external_id, amount)""",
            [x.transaction_id for x in r], [x.entry_id for x in r], [x.external_id for x in r],
            [x.amount for x in r], cid,
        )  # fmt: skip


def content_of(kind: str, contract_id: uuid.UUID, v: Any) -> EntryContent:
    """An entry version row (``work_entry_version``) as the rules read it."""
    return EntryContent(
        kind=kind,  # type: ignore[arg-type]
        contract_id=contract_id,
        service_date=v["service_date"],
        resource_external_id=v["resource_external_id"],
        resource_name=v["resource_name"],
        role=v["role"],
        cost_rate=v["cost_rate"],
        hours=v["hours"],
        description=v["description"],
        category=v["category"],
        amount=v["amount"],
        currency=v["currency"],
        receipt_uri=v["receipt_uri"],
        approved_at=v["approved_at"],
        voided=v["voided"],
    )


@dataclass(frozen=True)
class Rejudgeable:
    book: EntryBook
    content: EntryContent
    fx_rate: Decimal | None


async def rejudgeable(conn: Connection, contract_id: uuid.UUID) -> list[Rejudgeable]:
    """Entries a change of terms may re-price: nothing of theirs invoiced (amendments never create
    adjustments), or held without a value (nothing to rewrite), and not voided."""
    rows = await conn.fetch(
        f"""with es as (select e.id from work_entry e where e.contract_id = $1 and e.status <> 'voided'),
                 t as ({_AGGREGATE} join es on es.id = t.entry_id group by t.entry_id)
            select e.id, e.kind, e.current_version, e.contract_id, e.source, e.external_id, e.service_date,
                   e.role, e.category, e.rate, e.billing, e.code, e.value, e.adjusting,
                   coalesce(t.invoiced, 0) as invoiced, coalesce(t.has_invoiced, false) as has_invoiced,
                   t.p_ids, t.p_kinds, t.p_amounts, t.p_billings, e.fx_rate as stored_fx,
                   v.service_date as v_date, v.resource_external_id, v.resource_name, v.role as v_role, v.cost_rate,
                   v.hours, v.description, v.category as v_category, v.amount, v.currency, v.receipt_uri,
                   v.approved_at, v.voided
            from es join work_entry e on e.id = es.id
            join work_entry_version v on v.entry_id = e.id and v.version = e.current_version
            left join t on t.entry_id = e.id
            where e.value is null or not coalesce(t.has_invoiced, false)""",
        contract_id,
    )
    return [
        Rejudgeable(
            _book(r),
            content_of(
                r["kind"],
                r["contract_id"],
                {**dict(r), "service_date": r["v_date"], "role": r["v_role"], "category": r["v_category"]},
            ),
            r["stored_fx"],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class ContractMoney:
    """Billed / unbilled / held of one contract, in its currency (docs/billing.md)."""

    currency: str
    billed: Decimal
    unbilled: Decimal
    held: Decimal


async def contract_money(
    conn: Connection, contract_ids: list[uuid.UUID], principal: Principal
) -> dict[uuid.UUID, ContractMoney]:
    """Billed / unbilled / held per visible contract, in one statement for any number of contracts.

    billed = on invoices queued, posting or posted; unbilled = billable and not on such an
    invoice (blocked invoices included); held = held amounts that have a value.
    """
    rows = await conn.fetch(
        f"""select c.id, c.currency,
                  coalesce(sum(bt.amount) filter (where bt.billing = 'billable'
                           and i.status in ('queued', 'posting', 'posted')), 0) as billed,
                  coalesce(sum(bt.amount) filter (where bt.billing = 'billable' and bt.status <> 'superseded'
                           and (i.id is null or i.status not in ('queued', 'posting', 'posted'))), 0) as unbilled,
                  coalesce(sum(bt.amount) filter (where bt.billing = 'held' and bt.status = 'held'), 0) as held
           from contract c
           join customer cu on cu.id = c.customer_id
           left join billing_transaction bt on bt.contract_id = c.id
           left join invoice i on i.id = bt.invoice_id
           where c.id = any($1) and {scope_clause(2)}
           group by c.id, c.currency""",
        contract_ids,
        *principal.scope_args(),
    )
    return {r["id"]: ContractMoney(r["currency"], r["billed"], r["unbilled"], r["held"]) for r in rows}


async def invoice_status_of(conn: Connection, transaction_ids: list[uuid.UUID]) -> dict[uuid.UUID, str | None]:
    """The status of the invoice each transaction is on (None: on none yet)."""
    rows = await conn.fetch(
        """select bt.id, i.status from billing_transaction bt left join invoice i on i.id = bt.invoice_id
           where bt.id = any($1::uuid[])""",
        transaction_ids,
    )
    return {r["id"]: r["status"] for r in rows}


@dataclass(frozen=True)
class TransactionRow:
    """A transaction as an entry's history shows it (superseded ones are not shown)."""

    id: uuid.UUID
    kind: str
    amount: Decimal
    currency: str
    date: date
    status: str
    invoice_id: uuid.UUID | None
    invoice_status: str | None
    reason: str | None
    correlation_id: str | None = None


async def entry_transactions(conn: Connection, entry_id: uuid.UUID) -> list[TransactionRow]:
    rows = await conn.fetch(
        """select t.id, t.kind, t.amount, t.currency, t.service_date, t.status, t.invoice_id, t.reason,
                  i.status as invoice_status, t.correlation_id
           from billing_transaction t left join invoice i on i.id = t.invoice_id
           where t.entry_id = $1 and t.status <> 'superseded' order by t.created_at, t.id""",
        entry_id,
    )
    return [
        TransactionRow(
            t["id"],
            t["kind"],
            t["amount"],
            t["currency"],
            t["service_date"],
            t["status"],
            t["invoice_id"],
            t["invoice_status"],
            t["reason"],
            t["correlation_id"],
        )  # fmt: skip
        for t in rows
    ]


@dataclass(frozen=True)
class Lineage:
    """One transaction and where its money came from: the entry version (or milestone) and the request."""

    row: TransactionRow
    contract_id: uuid.UUID
    entry_kind: str | None
    source: str | None
    external_id: str | None
    entry_version: int | None
    milestone_key: str | None
    correlation_id: str | None


async def transaction_lineage(conn: Connection, transaction_id: uuid.UUID, principal: Principal) -> Lineage | None:
    r = await conn.fetchrow(
        f"""select t.id, t.kind, t.amount, t.currency, t.service_date, t.status, t.invoice_id, t.reason,
                   i.status as invoice_status, t.contract_id, e.kind as entry_kind, e.source, e.external_id,
                   t.subject_version, t.milestone_key, t.correlation_id
            from billing_transaction t
            join contract c on c.id = t.contract_id join customer cu on cu.id = c.customer_id
            left join invoice i on i.id = t.invoice_id left join work_entry e on e.id = t.entry_id
            where t.id = $1 and t.status <> 'superseded' and {scope_clause(2)}""",
        transaction_id,
        *principal.scope_args(),
    )
    if r is None:
        return None
    row = TransactionRow(
        r["id"], r["kind"], r["amount"], r["currency"], r["service_date"], r["status"], r["invoice_id"],
        r["invoice_status"], r["reason"], r["correlation_id"],
    )  # fmt: skip
    return Lineage(
        row, r["contract_id"], r["entry_kind"], r["source"], r["external_id"],
        r["subject_version"] if r["entry_kind"] else None, r["milestone_key"], r["correlation_id"],
    )  # fmt: skip


@dataclass(frozen=True)
class Window:
    """The part of a capped pool a batch can move, and what the rest of the pool adds up to."""

    books: list[EntryBook]  # pending entries at or after the start key (only billable ones when growing)
    before: Decimal  # positive pending demand of the entries before the start key
    credits: Decimal  # negative pending demand of every entry of the pool (credits free room anywhere)


# The pending demand of each entry of one pool of a contract, but the batch's own entries.
_POOL_DEMAND = """with d as (
        select t.entry_id, sum(t.amount) as demand,
               coalesce(sum(t.amount) filter (where t.billing = 'billable'), 0) as billable
        from billing_transaction t
        where t.contract_id = $1 and t.invoice_id is null and t.status in ('unbilled', 'held')
          and t.entry_id is not null
        group by t.entry_id),
    pool as (
        select e.id, d.demand, d.billable,
               (e.service_date, e.external_id collate "C", e.source collate "C")
                 < ($4::date, $5::text collate "C", $6::text collate "C") as before_start
        from d join work_entry e on e.id = d.entry_id
        left join unnest($7::uuid[]) as x(id) on x.id = e.id
        where x.id is null and e.kind = $2 and ($3::text is null or e.category = $3))"""


async def pool_window(
    conn: Connection,
    contract_id: uuid.UUID,
    pool: str,
    start: tuple[date, str, str],
    exclude: list[uuid.UUID],
    growing: bool,
) -> Window:
    kind = "time" if pool == "time" else "expense"
    category = None if pool == "time" else pool.removeprefix("expense:")
    args = (contract_id, kind, category, start[0], start[1], start[2], exclude)
    sums = await conn.fetchrow(
        f"""{_POOL_DEMAND}
            select coalesce(sum(demand) filter (where demand > 0 and before_start), 0) as before,
                   coalesce(sum(demand) filter (where demand < 0), 0) as credits
            from pool""",
        *args,
    )
    rows = await conn.fetch(
        f"""{_POOL_DEMAND},
            s as (select id from pool where not before_start and (not $8 or billable > 0)),
            t as ({_AGGREGATE} join s on s.id = t.entry_id group by t.entry_id)
            {_BOOKS}""",
        *args,
        growing,
    )
    return Window([_book(r) for r in rows], sums["before"], sums["credits"])
