"""SQL of the ledger: the only module that writes ``billing_transaction`` (with ``invoicing`` for
the billing run's claims). Reads return the frozen records of ``ledger.records``."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from app.access import Principal, scope_clause
from app.db import Connection, TableRows, insert_tables
from app.observability import correlation_id
from process_apis.ledger.records import EntryBook, EntryContent, Pending, RateStart, WorkTerms
from process_apis.ledger.settlement import Plan

__all__ = [
    "Balances",
    "Window",
    "WindowSpec",
    "pool_windows",
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


async def write_plan(
    conn: Connection, plan: Plan, stored_by_caller: set[uuid.UUID], with_rows: Sequence[TableRows] = ()
) -> None:
    """Write a settlement: new transactions (after the caller's ``with_rows``; one statement when few,
    else COPY), changed ones and superseded ones in one statement each, entries whose state moved
    (but those the caller writes itself), and a release event each."""
    cid = correlation_id()
    await insert_tables(
        conn,
        [
            *with_rows,
            (
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
            ),
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
    moved = [s for s in plan.settled.values() if (s.changed or s.pending_moved) and s.entry_id not in stored_by_caller]
    if moved:
        await conn.execute(
            """update work_entry e
                  set billing = x.billing, code = x.code, value = x.value, adjusting = x.adjusting,
                      rate = case when x.judged then x.rate else e.rate end,
                      fx_rate = case when x.judged then x.fx_rate else e.fx_rate end,
                      converted_amount = case when x.judged then x.converted else e.converted_amount end,
                      cost_amount = case when x.judged then x.cost else e.cost_amount end,
                      pending_billable = x.pending_billable, pending_held = x.pending_held, updated_at = now()
               from unnest($1::uuid[], $2::text[], $3::text[], $4::numeric[], $5::bool[], $6::bool[],
                           $7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[], $11::numeric[],
                           $12::numeric[])
                    as x(id, billing, code, value, adjusting, judged, rate, fx_rate, converted, cost,
                         pending_billable, pending_held)
               where e.id = x.id""",
            [s.entry_id for s in moved], [s.billing for s in moved], [s.code for s in moved],
            [s.value for s in moved], [s.adjusting for s in moved], [s.priced is not None for s in moved],
            [s.priced.rate if s.priced else None for s in moved],
            [s.priced.fx_rate if s.priced else None for s in moved],
            [s.priced.converted if s.priced else None for s in moved],
            [s.priced.cost if s.priced else None for s in moved],
            [s.pending_billable for s in moved], [s.pending_held for s in moved],
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
class WindowSpec:
    """What a batch does to one capped pool: the earliest key it touches and the money it adds."""

    contract_id: uuid.UUID
    pool: str
    start: tuple[date, str, str]  # (service date, external id, source)
    growing: bool  # no demand falls and no key moves later
    need: Decimal  # positive demand the batch adds (growing: room that must come from the tail)


@dataclass(frozen=True)
class Window:
    """The part of a capped pool a batch can move, and what the rest of it has spent."""

    books: list[EntryBook]  # the entries whose allocation can move
    spent: Decimal  # positive pending demand of the others that keep their room
    credits: Decimal  # negative pending demand of the others (credits free room anywhere)
    invoiced: Decimal  # billable money of the pool on invoices (a blocked one included)


# Each touched pool's pending entries (the batch's own excluded), read in cap order off
# ``work_entry_pool_ix``, classed as: before the start key (keeps its room); after it, when the pool
# is growing, a billable entry keeps its room unless it is in the tail of billable money the batch's
# new demand can push out (the later billable money is under ``need``); held money stays held.
# Otherwise everything after the start key can move.
_WINDOWS = f"""with spec as (
        select * from unnest($1::uuid[], $2::text[], $3::text[], $4::date[], $5::text[], $6::text[], $7::bool[],
                             $8::numeric[])
                 with ordinality as s(contract_id, kind, category, d, x, src, growing, need, ord)),
    classed as (
        select s.ord, p.id, p.demand, case
                 when p.before_start then 'kept'
                 when not s.growing then 'window'
                 when p.billable <= 0 then 'other'
                 when p.later < s.need then 'window'
                 else 'kept' end as class
        from spec s cross join lateral (
            -- Backwards along work_entry_pool_ix: no sort; "later" is the billable money after the entry.
            select e.id, e.pending_billable as billable, e.pending_billable + e.pending_held as demand,
                   (e.service_date, e.external_id collate "C", e.source collate "C")
                     < (s.d, s.x collate "C", s.src collate "C") as before_start,
                   coalesce(sum(e.pending_billable) filter (where e.pending_billable > 0) over (
                       order by e.service_date desc, e.external_id collate "C" desc, e.source collate "C" desc
                       rows between unbounded preceding and 1 preceding), 0) as later
            from work_entry e
            where e.contract_id = s.contract_id and e.kind = s.kind
              and (e.pending_billable <> 0 or e.pending_held <> 0)
              and (s.category is null or e.category = s.category) and e.id <> all($9::uuid[])
            order by e.service_date desc, e.external_id collate "C" desc, e.source collate "C" desc) p),
    sums as (
        select ord, coalesce(sum(demand) filter (where class = 'kept' and demand > 0), 0) as spent,
               coalesce(sum(demand) filter (where class <> 'window' and demand < 0), 0) as credits
        from classed group by ord),
    win as (select ord, id from classed where class = 'window'),
    t as ({_AGGREGATE} join win on win.id = t.entry_id group by t.entry_id)
    -- One row per pool (its sums and the billable money it has on invoices), then the window's books.
    select s.ord, 'pool' as part, coalesce(x.spent, 0) as spent, coalesce(x.credits, 0) as credits,
           i.amount as pool_invoiced, null::uuid as id, null::text as kind, null::int as current_version,
           null::uuid as contract_id, null::text as source, null::text as external_id, null::date as service_date,
           null::text as role, null::text as category, null::numeric as rate, null::text as billing,
           null::text as code, null::numeric as value, null::bool as adjusting, null::numeric as invoiced,
           null::bool as has_invoiced, null::uuid[] as p_ids, null::text[] as p_kinds,
           null::numeric[] as p_amounts, null::text[] as p_billings
    from spec s left join sums x on x.ord = s.ord
    cross join lateral (
        select coalesce(sum(b.amount), 0) as amount from billing_transaction b
        where b.contract_id = s.contract_id and b.status = 'invoiced' and b.billing = 'billable'
          and b.entry_id is not null
          and b.subject_type = case s.kind when 'time' then 'time_entry' else 'expense' end
          and (s.category is null or b.category = s.category)) i
    union all
    select w.ord, 'book', null, null, null, e.id, e.kind, e.current_version, e.contract_id, e.source,
           e.external_id, e.service_date, e.role, e.category, e.rate, e.billing, e.code, e.value, e.adjusting,
           coalesce(t.invoiced, 0), coalesce(t.has_invoiced, false), t.p_ids, t.p_kinds, t.p_amounts, t.p_billings
    from win w join work_entry e on e.id = w.id left join t on t.entry_id = e.id"""


async def pool_windows(conn: Connection, specs: list[WindowSpec], exclude: list[uuid.UUID]) -> list[Window]:
    """The window of each spec, in order: one statement whatever the number of pools."""
    rows = await conn.fetch(
        _WINDOWS,
        [s.contract_id for s in specs],
        ["time" if s.pool == "time" else "expense" for s in specs],
        [None if s.pool == "time" else s.pool.removeprefix("expense:") for s in specs],
        [s.start[0] for s in specs],
        [s.start[1] for s in specs],
        [s.start[2] for s in specs],
        [s.growing for s in specs],
        [s.need for s in specs],
        exclude,
    )
    pools = {r["ord"]: r for r in rows if r["part"] == "pool"}
    books: dict[int, list[EntryBook]] = {}
    for r in rows:
        if r["part"] == "book":
            books.setdefault(r["ord"], []).append(_book(r))
    return [
        Window(books.get(n, []), pools[n]["spent"], pools[n]["credits"], pools[n]["pool_invoiced"])
        for n in range(1, len(specs) + 1)
    ]
