"""The ledger's verb: settle a contract's work (judge, allocate caps, write the transactions).

A library of the process layer, not a service: the caller (ingestion, an amendment or its dry
run, activation, a billing run, an exception retry) owns the transaction and holds the contract's
row lock, so two API processes settling the same contract take turns and caps stay exact.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from app.db import Connection, TableRows
from process_apis.exceptions.store import raise_exception, resolve_exceptions
from process_apis.ledger import store
from process_apis.ledger.records import EntryBook, EntryContent, Judged, Priced, Released, Repriced, WorkTerms
from process_apis.ledger.rules import CAP_CODES, HOLD_CODES, price_expense, price_time
from process_apis.ledger.settlement import Plan, demand_of, pool_of, settle

__all__ = [
    "HOLDING",
    "WORK_HOLD_CODES",
    "FxKey",
    "Reevaluation",
    "fx_key",
    "judge",
    "plan_work",
    "reevaluate_contract",
    "settle_work",
    "sync_holds",
    "write_work",
]

FxKey = tuple[date, str, str]  # (day, from currency, to currency)
_SYNCED = [*HOLD_CODES, *CAP_CODES]
WORK_HOLD_CODES = [c for c in _SYNCED if c != "CONTRACT_BLOCKED"]  # exceptions only the ledger opens
HOLDING = frozenset(_SYNCED)  # codes that keep a work item open while an entry has one
_RETRYABLE = {"FX_RATE_MISSING"}


def judge(terms: WorkTerms, content: EntryContent, fx_rate: Decimal | None) -> Priced:
    """Time and expenses differ only in how they are priced."""
    if content.kind == "time":
        return price_time(terms, content)
    return price_expense(terms, content, fx_rate)


def fx_key(terms: WorkTerms, content: EntryContent) -> FxKey | None:
    """The FX rate an expense needs (None for time and for an expense in the contract currency)."""
    if content.kind != "expense" or content.currency is None or content.currency == terms.currency:
        return None
    return (content.service_date, content.currency, terms.currency)


async def plan_work(
    conn: Connection, terms: Mapping[uuid.UUID, WorkTerms], judged: Sequence[Judged], every_pool: bool = False
) -> Plan:
    """Allocate the caps the judged entries touch: what to write, not written yet.

    ``every_pool``: settle every pending amount of these contracts (a re-evaluation: a cap raised,
    lowered or removed moves anything). Otherwise only the part of each touched capped pool that
    can move is read (``_pool_windows``), so a batch costs what it changes, not what is pending.
    """
    exclude = [j.book.id for j in judged]
    if every_pool:
        pools = {(cid, pool) for cid, t in terms.items() for pool in t.capped_pools()}
        kept = await store.pending_books(conn, list(terms), exclude)
        spent = await store.pool_invoiced(conn, {cid for cid, _ in pools}) if pools else {}
        return settle(terms, judged, kept, spent)
    kept, spent = await _pool_windows(conn, terms, judged, exclude)
    return settle(terms, judged, kept, spent)


@dataclass
class _Change:
    """What the judged entries do to one capped pool."""

    start: tuple[date, str, str]  # the earliest key they touch (old or new)
    growing: bool = True  # no demand falls and no key moves later: held money stays held
    need: Decimal = Decimal(0)  # room they can take from the pool's other entries (an upper bound)


async def _pool_windows(
    conn: Connection, terms: Mapping[uuid.UUID, WorkTerms], judged: Sequence[Judged], exclude: list[uuid.UUID]
) -> tuple[list[EntryBook], dict[tuple[uuid.UUID, str], Decimal]]:
    """The entries of each touched capped pool whose allocation can move, and the room the rest spend.

    Room goes in key order, so entries before the earliest key a batch touches keep what they have:
    their demand is summed in SQL, not read. After it, when nothing falls, held money stays held and
    only the latest billable entries, as much of them as the batch's new demand can push out, can lose
    room (``store.pool_windows``); otherwise every pending entry after it is read. Credits (negative
    demands) free room wherever they are.
    """
    changes: dict[tuple[uuid.UUID, str], _Change] = {}

    def touch(contract_id: uuid.UUID, pool: str, key: tuple[date, str, str], growing: bool, need: Decimal) -> None:
        if terms[contract_id].cap_of(pool) is None:
            return
        change = changes.get((contract_id, pool))
        if change is None:
            changes[(contract_id, pool)] = _Change(key, growing, need)
        else:
            change.start = min(change.start, key)
            change.growing = change.growing and growing
            change.need += need

    zero = Decimal(0)
    for j in judged:
        book, new = j.book, demand_of(j)
        new_pool = pool_of(book.kind, j.content.category)
        new_key = (j.content.service_date, book.external_id, book.source)
        if book.is_new:
            touch(book.contract_id, new_pool, new_key, new >= 0, max(new, zero))
            continue
        old_pool, old_key, old = book.pool, (book.service_date, book.external_id, book.source), book.demand
        # A credit that leaves a pool takes the room it freed with it.
        if old_pool == new_pool:
            growing = new >= old and new >= 0 and new_key <= old_key
            touch(book.contract_id, new_pool, min(old_key, new_key), growing, max(new, zero) + max(-old, zero))
        else:
            touch(book.contract_id, old_pool, old_key, old <= 0, max(-old, zero))
            touch(book.contract_id, new_pool, new_key, new >= 0, max(new, zero))
    if not changes:
        return [], {}
    specs = [store.WindowSpec(c, pool, ch.start, ch.growing, ch.need) for (c, pool), ch in changes.items()]
    windows = await store.pool_windows(conn, specs, exclude)
    kept: list[EntryBook] = []
    spent: dict[tuple[uuid.UUID, str], Decimal] = {}
    for spec, window in zip(specs, windows, strict=True):
        kept += window.books
        # Room the pool has spent: invoiced money and the entries that keep theirs, less credits outside the window.
        key = (spec.contract_id, spec.pool)
        spent[key] = window.invoiced + window.spent + window.credits
    return kept, spent


async def write_work(
    conn: Connection, plan: Plan, stored_by_caller: set[uuid.UUID], with_rows: Sequence[TableRows] = ()
) -> None:
    """Write a plan's transactions and the entries whose state moved.

    ``stored_by_caller``: entries whose row the caller writes itself (ingestion writes new and
    corrected entries with their versions, from the plan's ``settled``). ``with_rows``: the caller's
    new rows (its new entries first), inserted before the transactions that reference them, in the
    same statement when they are few.
    """
    await store.write_plan(conn, plan, stored_by_caller, with_rows)


async def settle_work(conn: Connection, terms: Mapping[uuid.UUID, WorkTerms], judged: Sequence[Judged]) -> Plan:
    plan = await plan_work(conn, terms, judged, every_pool=True)
    await write_work(conn, plan, set())
    return plan


async def sync_holds(conn: Connection, contract_ids: Iterable[uuid.UUID]) -> None:
    """One open work-queue exception per (code, contract) while anything is held for that code."""
    ids = [str(c) for c in contract_ids]
    rows = await conn.fetch(
        """with held as (
               select contract_id::text as subject_id, code, count(*) as n from work_entry
               where contract_id = any($1::uuid[]) and code = any($2::text[]) group by 1, 2),
           open as (
               select distinct subject_id, code from exception
               where subject_type = 'contract' and subject_id = any($1::text[]) and code = any($2::text[])
                 and status <> 'resolved')
           select coalesce(h.subject_id, o.subject_id) as subject_id, coalesce(h.code, o.code) as code, h.n,
                  o.code is not null as is_open
           from held h full join open o on o.subject_id = h.subject_id and o.code = h.code""",
        ids,
        _SYNCED,
    )
    held = {(r["subject_id"], r["code"]): r["n"] for r in rows if r["n"] is not None}
    open_now = {(r["subject_id"], r["code"]) for r in rows if r["is_open"]}
    for contract_id, code in sorted(held.keys() - open_now):
        n = held[(contract_id, code)]
        await raise_exception(
            conn,
            code,
            "contract",
            contract_id,
            f"{n} entr{'y' if n == 1 else 'ies'} of the contract held: {code}",
            ["retry"] if code in _RETRYABLE else [],
        )
    for contract_id, code in sorted(open_now - held.keys()):
        await resolve_exceptions(conn, "contract", contract_id, [code])


@dataclass(frozen=True)
class Reevaluation:
    repriced: list[Repriced] = field(default_factory=list)
    released: list[Released] = field(default_factory=list)


async def reevaluate_contract(
    conn: Connection, contract_id: uuid.UUID, fx: Mapping[FxKey, Decimal | None] | None = None
) -> Reevaluation:
    """Re-judge the contract's work that nothing invoiced yet under its terms now, and re-allocate its caps.

    After an amendment (new rates from its effective date, caps, categories, term), an activation,
    or FX rates that arrived (``fx``: fetched by the caller before its transaction). Entries with
    invoiced money keep their value — amendments never create adjustments — and only move with room.
    """
    terms = await store.load_terms(conn, [contract_id])
    if contract_id not in terms:
        return Reevaluation()
    t = terms[contract_id]
    judged = []
    for r in await store.rejudgeable(conn, contract_id):
        key = fx_key(t, r.content)
        rate = Decimal(1) if key is None else (fx or {}).get(key) or r.fx_rate
        priced = judge(t, r.content, rate)
        book = r.book
        before = (book.billing, book.code) if book.code not in CAP_CODES else ("billable", None)
        rebuild = (priced.value, priced.billing, priced.code) != (book.value, *before)
        judged.append(Judged(book, priced, r.content, book.adjusting, rebuild, book.version))
    plan = await settle_work(conn, terms, judged)
    await sync_holds(conn, [contract_id])
    return Reevaluation(plan.repriced, plan.released)
