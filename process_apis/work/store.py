"""SQL of time entries and expenses: identities and versions (the ledger writes their money).

Every write is set-based: new rows by COPY, changed rows by one ``unnest`` update.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from app.access import Principal, scope_clause
from app.db import Connection, TableRows
from app.observability import correlation_id
from process_apis.ledger.records import EntryContent, EntryKind, Priced, Settled
from process_apis.ledger.store import TransactionRow, content_of, entry_transactions

__all__ = [
    "EntryRow",
    "NewVersion",
    "StoredEntry",
    "contract_currencies",
    "lock_caps",
    "lock_contract",
    "missing_fx",
    "new_rows",
    "stored_entries",
    "update_entries",
]


@dataclass(frozen=True)
class StoredEntry:
    id: uuid.UUID
    content_external_id: str
    contract_id: uuid.UUID
    current_version: int
    status: str
    content: EntryContent
    content_hash: str
    converted_amount: Decimal | None


async def contract_currencies(conn: Connection, contract_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await conn.fetch("select id, currency from contract where id = any($1::uuid[])", contract_ids)
    return {r["id"]: r["currency"] for r in rows}


async def lock_caps(conn: Connection, contract_ids: list[uuid.UUID]) -> None:
    """One batch at a time allocates a contract's caps: an advisory lock per capped contract, taken in
    id order (two batches never wait on each other in a cycle), released at commit."""
    await conn.execute(
        """select pg_advisory_xact_lock(hashtextextended('psbridge:caps:' || s.id::text, 0))
           from (select id from unnest($1::uuid[]) as u(id) order by id) s""",
        contract_ids,
    )


async def lock_contract(conn: Connection, contract_id: uuid.UUID) -> bool:
    """Lock one contract for psbridge's own re-evaluation (no API key behind it)."""
    return bool(await conn.fetchval("select true from contract where id = $1 for update", contract_id))


async def missing_fx(conn: Connection, contract_id: uuid.UUID) -> set[tuple[date, str, str]]:
    """The (day, from, to) rates the contract's expenses held FX_RATE_MISSING wait for."""
    rows = await conn.fetch(
        """select distinct v.service_date, v.currency, c.currency as contract_currency
           from work_entry e join contract c on c.id = e.contract_id
           join work_entry_version v on v.entry_id = e.id and v.version = e.current_version
           where e.contract_id = $1 and e.code = 'FX_RATE_MISSING'""",
        contract_id,
    )
    return {(r["service_date"], r["currency"], r["contract_currency"]) for r in rows}


async def stored_entries(
    conn: Connection, kind: EntryKind, source: str, external_ids: list[str]
) -> dict[str, StoredEntry]:
    rows = await conn.fetch(
        """select e.id, e.external_id, e.contract_id, e.current_version, e.status, e.converted_amount, v.*
           from unnest($3::text[]) as x(external_id)
           join work_entry e on e.kind = $1 and e.source = $2 and e.external_id = x.external_id
           join work_entry_version v on v.entry_id = e.id and v.version = e.current_version""",
        kind,
        source,
        external_ids,
    )
    return {
        r["external_id"]: StoredEntry(
            r["id"],
            r["external_id"],
            r["contract_id"],
            r["current_version"],
            r["status"],
            content_of(kind, r["contract_id"], r),
            r["content_hash"],
            r["converted_amount"],
        )
        for r in rows
    }


@dataclass(frozen=True)
class NewVersion:
    entry_id: uuid.UUID
    version: int
    content: EntryContent
    content_hash: str


_VERSION_COLUMNS = [
    "entry_id", "version", "resource_external_id", "resource_name", "role", "cost_rate", "category", "amount",
    "currency", "receipt_uri", "service_date", "hours", "description", "approved_at", "voided", "content_hash",
    "correlation_id",
]  # fmt: skip


def _version_row(v: NewVersion, cid: str | None) -> tuple[Any, ...]:
    c = v.content
    return (
        v.entry_id, v.version, c.resource_external_id, c.resource_name, c.role, c.cost_rate, c.category, c.amount,
        c.currency, c.receipt_uri, c.service_date, c.hours, c.description, c.approved_at, c.voided, v.content_hash,
        cid,
    )  # fmt: skip


@dataclass(frozen=True)
class EntryRow:
    """An entry as this request leaves it: identity, newest version, what the request did, its money state."""

    id: uuid.UUID
    kind: EntryKind
    source: str
    external_id: str
    content: EntryContent
    version: int
    status: str
    settled: Settled
    priced: Priced
    is_new: bool


def _row(e: EntryRow, cid: str | None) -> tuple[Any, ...]:
    s, p, c = e.settled, e.priced, e.content
    return (
        e.id, e.kind, e.source, e.external_id, c.contract_id, e.version, e.status, s.billing, s.code, s.value,
        s.adjusting, c.service_date, c.role, c.category, p.rate, p.fx_rate, p.converted, p.cost, cid,
        s.pending_billable, s.pending_held,
    )  # fmt: skip


_ENTRY_COLUMNS = [
    "id", "kind", "source", "external_id", "contract_id", "current_version", "status", "billing", "code", "value",
    "adjusting", "service_date", "role", "category", "rate", "fx_rate", "converted_amount", "cost_amount",
    "correlation_id", "pending_billable", "pending_held",
]  # fmt: skip


Event = tuple[str, uuid.UUID, dict[str, Any]]  # (event type, entry id, payload)
_EVENT_COLUMNS = ["event_type", "subject_type", "subject_id", "payload", "correlation_id"]


def new_rows(rows: Sequence[EntryRow], versions: Sequence[NewVersion], events: Sequence[Event]) -> list[TableRows]:
    """The new entries, their new versions and their outbox events, as rows to insert (entries first):
    the ledger writes them with its transactions, in one statement when they are few."""
    cid = correlation_id()
    return [
        ("work_entry", _ENTRY_COLUMNS, [_row(e, cid) for e in rows if e.is_new]),
        ("work_entry_version", _VERSION_COLUMNS, [_version_row(v, cid) for v in versions]),
        ("outbox_event", _EVENT_COLUMNS, [(kind, "work_entry", str(i), payload, cid) for kind, i, payload in events]),
    ]


async def update_entries(conn: Connection, rows: Sequence[EntryRow]) -> None:
    """Corrected and voided entries: their new state in one statement."""
    cid = correlation_id()
    changed = [_row(e, cid) for e in rows if not e.is_new]
    if changed:
        columns = list(zip(*changed, strict=True))
        await conn.execute(
            """update work_entry e set current_version = x.version, status = x.status, billing = x.billing,
                      code = x.code, value = x.value, adjusting = x.adjusting, service_date = x.service_date,
                      role = x.role, category = x.category, rate = x.rate, fx_rate = x.fx_rate,
                      converted_amount = x.converted, cost_amount = x.cost, correlation_id = x.cid,
                      pending_billable = x.pending_billable, pending_held = x.pending_held, updated_at = now()
               from unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], $6::numeric[], $7::bool[],
                           $8::date[], $9::text[], $10::text[], $11::numeric[], $12::numeric[], $13::numeric[],
                           $14::numeric[], $15::text[], $16::numeric[], $17::numeric[])
                    as x(id, version, status, billing, code, value, adjusting, service_date, role, category, rate,
                         fx_rate, converted, cost, cid, pending_billable, pending_held)
               where e.id = x.id""",
            *(list(columns[i]) for i in (0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)),
        )


@dataclass(frozen=True)
class VersionRow:
    version: int
    content: EntryContent
    created_at: datetime
    correlation_id: str | None


@dataclass(frozen=True)
class EntryDetail:
    id: uuid.UUID
    kind: EntryKind
    source: str
    external_id: str
    contract_id: uuid.UUID
    currency: str
    status: str
    billing: str
    code: str | None
    adjusting: bool
    converted_amount: Decimal | None
    versions: list[VersionRow]
    transactions: list[TransactionRow]


async def entry_detail(
    conn: Connection, kind: EntryKind, source: str, external_id: str, principal: Principal
) -> EntryDetail | None:
    """An entry the key may see, with every version and every transaction not superseded."""
    e = await conn.fetchrow(
        f"""select e.*, c.currency as contract_currency from work_entry e
            join contract c on c.id = e.contract_id join customer cu on cu.id = c.customer_id
            where e.kind = $1 and e.source = $2 and e.external_id = $3 and {scope_clause(4)}""",
        kind,
        source,
        external_id,
        *principal.scope_args(),
    )
    if e is None:
        return None
    versions = await conn.fetch("select * from work_entry_version where entry_id = $1 order by version", e["id"])
    txns = await entry_transactions(conn, e["id"])
    return EntryDetail(
        id=e["id"],
        kind=kind,
        source=source,
        external_id=external_id,
        contract_id=e["contract_id"],
        currency=e["contract_currency"],
        status=e["status"],
        billing=e["billing"],
        code=e["code"],
        adjusting=e["adjusting"],
        converted_amount=e["converted_amount"],
        versions=[
            VersionRow(v["version"], content_of(kind, e["contract_id"], v), v["created_at"], v["correlation_id"])
            for v in versions
        ],
        transactions=txns,
    )
