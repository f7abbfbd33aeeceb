"""Time entries and expenses: take a batch from the PSA, judge it as a set, settle it in one transaction.

A batch costs a fixed number of statements whatever its size: the contracts it names are locked
(in id order: two API processes settling one contract take turns, caps stay exact), their terms
read once, the stored entries read once, and every write is a COPY or one ``unnest`` statement.
FX rates are fetched before the transaction (no HTTP call inside one).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field, replace
from decimal import Decimal

from app.access import Principal
from app.db import Connection, Database
from app.errors import BackendRejected, BackendUnavailable, FieldError, NotFound
from app.ids import new_id
from app.ownership import check_ownership
from process_apis.ledger.engine import (
    HOLDING,
    FxKey,
    fx_key,
    judge,
    plan_work,
    reevaluate_contract,
    sync_holds,
    write_work,
)
from process_apis.ledger.records import EntryBook, EntryContent, EntryKind, Judged, Settled, WorkTerms
from process_apis.ledger.settlement import Plan, settled_of_book
from process_apis.ledger.store import entry_books, load_terms
from process_apis.work import store
from process_apis.work.commands import Parsed, Rejected, content_hash, parse_entry
from process_apis.work.store import EntryDetail, EntryRow, NewVersion, StoredEntry
from system_apis.fx.port import FxPort

__all__ = ["EntryResult", "WorkService"]

_OWNED_FIELD = {"time": ("time_entry", "hours"), "expense": ("expense", "amount")}
_EVENTS = {"accepted": "entry.accepted", "held": "entry.held", "corrected": "entry.corrected", "voided": "entry.voided"}
FX_CONCURRENCY = 8
CUSTOM_PLANS_FROM = 50  # entries
SPLIT_FROM = 50  # entries: a smaller batch over several contracts is one transaction (one round trip less)


@dataclass(frozen=True)
class EntryResult:
    """One entry's result: what the request did to it (``status``) and its state after the whole request."""

    external_id: str | None
    status: str
    billing: str | None = None
    amount: Decimal | None = None
    held_amount: Decimal | None = None
    adjustment_amount: Decimal | None = None
    currency: str | None = None
    codes: list[str] = field(default_factory=list)
    converted_amount: Decimal | None = None
    errors: list[FieldError] | None = None


@dataclass
class _Identity:
    """One external id as the request walks it in list order."""

    id: uuid.UUID
    external_id: str
    contract_id: uuid.UUID
    content: EntryContent
    hash: str
    version: int
    is_new: bool
    converted: Decimal | None = None  # as stored
    status: str | None = None  # what the request last did to it (None: untouched)
    versions: list[NewVersion] = field(default_factory=list)


class WorkService:
    def __init__(self, db: Database, fx: FxPort, concurrent_batches: int = 4) -> None:
        self.db, self.fx = db, fx
        # Big batches are CPU-bound in this process's one event loop: settled a few at a time, a batch
        # holding cap locks is not slowed down by a dozen others judging between its statements.
        self._batches = asyncio.Semaphore(concurrent_batches)

    async def ingest(
        self, kind: EntryKind, source: str, raw_entries: list[object], principal: Principal
    ) -> list[EntryResult]:
        """Judge and settle a batch. Its entries for contracts whose caps it allocates settle in a
        transaction of their own, after the others: only that part holds the cap locks, so batches
        spread over many contracts do not queue behind each other's uncapped work. Each entry's
        result is still its state after the whole request (entries of two contracts never share money)."""
        if len(raw_entries) < CUSTOM_PLANS_FROM:
            return await self._ingest(kind, source, raw_entries, principal)
        async with self._batches:
            return await self._ingest(kind, source, raw_entries, principal)

    async def _ingest(
        self, kind: EntryKind, source: str, raw_entries: list[object], principal: Principal
    ) -> list[EntryResult]:
        parsed = [parse_entry(kind, i, raw) for i, raw in enumerate(raw_entries)]
        named = sorted({p.contract_id for p in parsed if isinstance(p, Parsed) and p.contract_id is not None})
        fx = await self._fx_rates(kind, parsed, named)
        groups = [parsed]
        if len(named) > 1 and len(parsed) >= SPLIT_FROM:
            async with self.db.connection() as conn:
                groups = _split(parsed, await self._capped(conn, kind, named))
        results: dict[int, EntryResult] = {}
        for group in groups:
            results.update(await self._settle(kind, source, principal, group, fx))
        return [results[i] for i in range(len(parsed))]

    @staticmethod
    async def _capped(conn: Connection, kind: EntryKind, contract_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        terms = await load_terms(conn, contract_ids)
        return {c for c, t in terms.items() if _allocates(kind, t)}

    async def _settle(
        self,
        kind: EntryKind,
        source: str,
        principal: Principal,
        parsed: list[Parsed | Rejected],
        fx: dict[FxKey, Decimal | None],
    ) -> dict[int, EntryResult]:
        named = sorted({p.contract_id for p in parsed if isinstance(p, Parsed) and p.contract_id is not None})

        async def work(conn: Connection) -> list[EntryResult]:
            await check_ownership(conn, principal, [_OWNED_FIELD[kind]])  # before anything is written
            return await _Batch(conn, kind, source, principal, parsed, fx).settle(named)

        settled = await self.db.retrying(work, attempts=5)
        return {p.index: r for p, r in zip(parsed, settled, strict=True)}

    async def _fx_rates(
        self, kind: EntryKind, parsed: list[Parsed | Rejected], contract_ids: list[uuid.UUID]
    ) -> dict[FxKey, Decimal | None]:
        """The day's rate for every foreign-currency expense, each distinct (day, pair) asked once."""
        if kind != "expense" or not contract_ids:
            return {}
        async with self.db.connection() as conn:
            currencies = await store.contract_currencies(conn, contract_ids)
        keys = {
            (p.content.service_date, p.content.currency, currencies[p.content.contract_id])
            for p in parsed
            if isinstance(p, Parsed) and p.content is not None and p.content.contract_id in currencies
            and p.content.currency is not None and p.content.currency != currencies[p.content.contract_id]
        }  # fmt: skip
        return await self.fetch_fx(keys)

    async def fetch_fx(self, keys: set[FxKey]) -> dict[FxKey, Decimal | None]:
        """Rates for these keys; an FX API that cannot answer (or refuses) leaves them missing: the
        expenses are held ``FX_RATE_MISSING`` and priced when a billing run starts or the item is retried."""
        gate = asyncio.Semaphore(FX_CONCURRENCY)

        async def one(key: FxKey) -> tuple[FxKey, Decimal | None]:
            async with gate:
                try:
                    return key, await self.fx.find_rate(*key)
                except (BackendUnavailable, BackendRejected):
                    return key, None

        return dict(await asyncio.gather(*(one(k) for k in sorted(keys))))

    async def void(self, kind: EntryKind, source: str, external_id: str, principal: Principal) -> EntryResult:
        """DELETE: the entry's new value is 0; an unknown entry is a 404."""
        async with self.db.connection() as conn:
            if await store.entry_detail(conn, kind, source, external_id, principal) is None:
                raise NotFound(f"no {kind} entry {external_id} from {source}", "UNKNOWN_ENTRY")
        [result] = await self.ingest(kind, source, [{"external_id": external_id, "void": True}], principal)
        return result

    async def entry(self, kind: EntryKind, source: str, external_id: str, principal: Principal) -> EntryDetail:
        async with self.db.connection() as conn:
            detail = await store.entry_detail(conn, kind, source, external_id, principal)
        if detail is None:
            raise NotFound(f"no {kind} entry {external_id} from {source}", "UNKNOWN_ENTRY")
        return detail

    async def reprice_fx(self, contract_ids: list[uuid.UUID]) -> None:
        """Re-price expenses held FX_RATE_MISSING with rates fetched now (a billing run starts, a retry)."""
        for contract_id in contract_ids:
            async with self.db.connection() as conn:
                keys = await store.missing_fx(conn, contract_id)
            if not keys:
                continue
            rates = await self.fetch_fx(keys)
            if not any(rates.values()):
                continue  # still missing: nothing would change
            async with self.db.transaction() as conn:
                if await store.lock_contract(conn, contract_id):
                    await reevaluate_contract(conn, contract_id, rates)


class _Batch:
    """One request's settlement, inside its transaction."""

    def __init__(
        self,
        conn: Connection,
        kind: EntryKind,
        source: str,
        principal: Principal,
        parsed: list[Parsed | Rejected],
        fx: dict[FxKey, Decimal | None],
    ) -> None:
        self.conn, self.kind, self.source, self.principal = conn, kind, source, principal
        self.parsed, self.fx = parsed, fx

    async def settle(self, named: list[uuid.UUID]) -> list[EntryResult]:
        conn = self.conn
        custom_plans = len(self.parsed) > CUSTOM_PLANS_FROM
        if custom_plans:
            # A cached generic plan fits neither 1 nor 5,000 ids (nor tables that grew since it was
            # made): a big batch has its reads planned for its own arrays.
            await conn.execute("set local plan_cache_mode = force_custom_plan")
        terms = await load_terms(conn, named, share_lock_for=self.principal)
        visible = set(terms)
        await self._lock_caps(terms, visible)  # before reading entries: what we read stays true
        ids = sorted({p.external_id for p in self.parsed if isinstance(p, Parsed)})
        stored = await store.stored_entries(conn, self.kind, self.source, ids)
        # Voids and corrections that move contracts name an entry of a contract not locked yet.
        others = sorted({s.contract_id for s in stored.values()} - set(named))
        if others:
            more = await load_terms(conn, others, share_lock_for=self.principal)
            terms.update(more)
            await self._lock_caps(terms, set(more))
            visible |= set(more)
            stored = await store.stored_entries(conn, self.kind, self.source, ids)
        identities = {ext: _identity_of(s) for ext, s in stored.items() if s.contract_id in terms}
        outcomes = [self._walk(p, identities, visible) for p in self.parsed]
        touched = [i for i in identities.values() if i.versions]
        books = await entry_books(conn, [i.id for i in identities.values() if not i.is_new])
        judged = []
        for i in touched:
            book = books.get(i.id) or _new_book(i, self.kind, self.source)
            t = terms[i.contract_id]
            key = fx_key(t, i.content)
            priced = judge(t, i.content, Decimal(1) if key is None else self.fx.get(key))
            adjusting = book.adjusting or book.has_invoiced
            judged.append(Judged(book, priced, i.content, adjusting, rebuild=True, version=i.version))
        plan = await plan_work(conn, terms, judged)
        if custom_plans:
            # Not for the writes: every foreign-key check of every row would be planned afresh.
            await conn.execute("set local plan_cache_mode = auto")
        rows = [self._row(i, j, plan) for i, j in zip(touched, judged, strict=True)]
        await store.update_entries(conn, rows)
        new = store.new_rows(rows, [v for i in touched for v in i.versions], [_event(r) for r in rows])
        await write_work(conn, plan, {i.id for i in touched}, with_rows=new)
        # Work items follow the holds: only contracts where an entry enters or leaves one are looked at.
        held = {s.contract_id for s in plan.settled.values() if s.code in HOLDING or s.before in HOLDING}
        if held:
            await sync_holds(conn, held)
        return [self._result(o, identities, books, plan, terms) for o in outcomes]

    async def _lock_caps(self, terms: dict[uuid.UUID, WorkTerms], contract_ids: set[uuid.UUID]) -> None:
        capped = sorted(c for c in contract_ids if _allocates(self.kind, terms[c]))
        if capped:
            await store.lock_caps(self.conn, capped)

    def _walk(
        self, p: Parsed | Rejected, identities: dict[str, _Identity], visible: set[uuid.UUID]
    ) -> tuple[str, str | None, list[str], list[FieldError] | None]:
        """Apply one entry in list order: (status, external id, codes, errors)."""
        if isinstance(p, Rejected):
            return "rejected", p.external_id, ["INVALID_ENTRY"], p.errors
        cur = identities.get(p.external_id)
        if p.content is None:  # a void
            if cur is None or cur.contract_id not in visible:
                return "rejected", p.external_id, ["UNKNOWN_ENTRY"], None
            if not cur.content.voided:
                self._new_version(cur, replace(cur.content, voided=True), "voided")
            return "voided", p.external_id, [], None
        if p.code is not None:
            return "rejected", p.external_id, [p.code], None
        if p.contract_id not in visible:
            return "rejected", p.external_id, ["UNKNOWN_CONTRACT"], None
        if cur is not None and cur.contract_id != p.contract_id:
            return "rejected", p.external_id, ["CONTRACT_CHANGED"], None
        digest = content_hash(p.content)
        if cur is not None and cur.hash == digest:
            return "duplicate", p.external_id, [], None
        if cur is None:
            assert p.contract_id is not None
            cur = _Identity(new_id(), p.external_id, p.contract_id, p.content, digest, 0, True)
            identities[p.external_id] = cur
            self._new_version(cur, p.content, "new", digest)
            return "new", p.external_id, [], None
        self._new_version(cur, p.content, "corrected", digest)
        return "corrected", p.external_id, [], None

    @staticmethod
    def _new_version(cur: _Identity, content: EntryContent, status: str, digest: str | None = None) -> None:
        cur.version += 1
        cur.content, cur.hash = content, digest or content_hash(content)
        cur.status = "corrected" if status == "new" and cur.versions else status
        cur.versions.append(NewVersion(cur.id, cur.version, content, cur.hash))

    def _row(self, i: _Identity, j: Judged, plan: Plan) -> EntryRow:
        settled = plan.settled[i.id]
        status = i.status or "accepted"
        if status == "new":
            status = "held" if settled.billing == "held" else "accepted"
        return EntryRow(
            i.id, self.kind, self.source, i.external_id, i.content, i.version, status, settled, j.priced,
            i.is_new,
        )  # fmt: skip

    def _result(
        self,
        outcome: tuple[str, str | None, list[str], list[FieldError] | None],
        identities: dict[str, _Identity],
        books: dict[uuid.UUID, EntryBook],
        plan: Plan,
        terms: dict[uuid.UUID, WorkTerms],
    ) -> EntryResult:
        status, external_id, codes, errors = outcome
        if status == "rejected":
            return EntryResult(external_id, "rejected", codes=codes, errors=errors)
        assert external_id is not None
        i = identities[external_id]
        s: Settled = plan.settled.get(i.id) or settled_of_book(books[i.id])
        if status == "new":
            status = "held" if s.billing == "held" else "accepted"
        currency = terms[i.contract_id].currency
        converted = s.priced.converted if s.priced else i.converted
        return EntryResult(
            external_id=external_id,
            status=status,
            billing=s.billing,
            amount=s.billable,
            held_amount=s.held,
            adjustment_amount=s.adjustment,
            currency=currency,
            codes=[s.code] if s.code else [],
            converted_amount=converted,
        )


def _allocates(kind: EntryKind, terms: WorkTerms) -> bool:
    """A time batch allocates only the time cap, an expense batch only category allowances."""
    pools = terms.capped_pools()
    return "time" in pools if kind == "time" else bool(pools - {"time"})


def _split(parsed: list[Parsed | Rejected], capped: set[uuid.UUID]) -> list[list[Parsed | Rejected]]:
    """Entries for uncapped contracts first, then those whose caps the batch allocates (voids, which
    name no contract, with them). Every occurrence of an external id goes where its first went, so
    the same id twice in one request still counts in list order."""
    home: dict[str, bool] = {}
    free: list[Parsed | Rejected] = []
    locked: list[Parsed | Rejected] = []
    for p in parsed:
        if isinstance(p, Rejected) or p.external_id is None:
            free.append(p)
            continue
        to_lock = home.setdefault(p.external_id, p.contract_id is None or p.contract_id in capped)
        (locked if to_lock else free).append(p)
    return [group for group in (free, locked) if group]


def _identity_of(s: StoredEntry) -> _Identity:
    return _Identity(
        s.id, s.content_external_id, s.contract_id, s.content, s.content_hash, s.current_version, False,
        s.converted_amount,
    )  # fmt: skip


def _new_book(i: _Identity, kind: EntryKind, source: str) -> EntryBook:
    return EntryBook(
        id=i.id, kind=kind, contract_id=i.contract_id, source=source, external_id=i.external_id,
        service_date=i.content.service_date, role=i.content.role, category=i.content.category, rate=None,
        billing="held", code=None, value=None, adjusting=False, is_new=True,
    )  # fmt: skip


def _event(r: EntryRow) -> tuple[str, uuid.UUID, dict[str, object]]:
    s = r.settled
    return (
        _EVENTS[r.status],
        r.id,
        {
            "kind": r.kind, "source": r.source, "external_id": r.external_id, "contract_id": str(r.content.contract_id),
            "version": r.version, "billing": s.billing, "amount": str(s.billable),
            "held_amount": str(s.held) if s.held is not None else None, "codes": [s.code] if s.code else [],
        },
    )  # fmt: skip
