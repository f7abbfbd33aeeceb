"""The bare baseline of ``bench.ingestion``: validate a batch of time entries, insert it, answer per entry.

A minimal Starlette app, served by uvicorn in one process exactly as ``psbridge serve`` is (one worker,
uvicorn's defaults, ``log_level="warning"``), with nothing else: no authentication, no rate limit, no
idempotency, no rules. ``POST /time-entries`` takes psbridge's envelope (``{"source", "entries"}``),
validates the whole batch with pydantic (a model with psbridge's entry fields; hours are decimal strings),
then writes it with ONE ``insert ... select from unnest(...) on conflict do nothing`` into a plain table
(asyncpg pool) and answers ``{"results": [{"external_id", "status": "accepted"|"duplicate"}]}``.
One entry per request is the same endpoint with a batch of one.

``POST /floor/time-entries`` is the storage floor: the same validation, then the rows psbridge keeps for
an accepted entry, with no policy at all, into psbridge's own tables (their indexes and foreign keys): the
entry, its first version, one unbilled transaction priced at the contract's rate for the role (rates cached
in the process after the first request), and one ``entry.accepted`` outbox event, in one transaction,
written as psbridge writes them (``app.db.insert_tables``: COPY, a few in one statement). No reads of
stored entries, no judging, no caps, no authentication, rate limit or idempotency. What psbridge does
beyond this floor is its policy; what the floor costs beyond the baseline is its data model.

Run by the bench: ``python -m bench.ingestion_baseline --port N`` with ``PSBRIDGE_DATABASE_URL`` set.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import asyncpg
import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["TABLE", "TABLE_DDL", "create_app", "main"]

_ENTRY = [
    "id", "kind", "source", "external_id", "contract_id", "current_version", "status", "billing", "value",
    "service_date", "role", "rate", "cost_amount", "correlation_id", "pending_billable",
]  # fmt: skip
_VERSION = [
    "entry_id", "version", "resource_external_id", "resource_name", "role", "cost_rate", "service_date", "hours",
    "description", "approved_at", "content_hash", "correlation_id",
]  # fmt: skip
_TXN = [
    "id", "contract_id", "entry_id", "subject_version", "kind", "subject_type", "subject_id", "service_date",
    "role", "rate", "quantity", "amount", "currency", "cost_amount", "billing", "status", "correlation_id",
]  # fmt: skip
_EVENT = ["event_type", "subject_type", "subject_id", "payload", "correlation_id"]

TABLE = "bench_baseline_time_entry"
TABLE_DDL = f"""
create table if not exists {TABLE} (
    source text not null,
    external_id text not null,
    contract_id uuid not null,
    resource_external_id text not null,
    resource_name text,
    role text not null,
    cost_rate numeric,
    work_date date not null,
    hours numeric not null,
    description text,
    approved_at timestamptz,
    created_at timestamptz not null default now(),
    primary key (source, external_id)
)"""
INSERT = f"""
insert into {TABLE} (source, external_id, contract_id, resource_external_id, resource_name, role, cost_rate,
                     work_date, hours, description, approved_at)
select $1, * from unnest($2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::numeric[],
                         $8::date[], $9::numeric[], $10::text[], $11::timestamptz[])
on conflict do nothing
returning external_id"""
POOL_MIN, POOL_MAX = 1, 10  # psbridge's db_pool_min / db_pool_max defaults

Text = Annotated[str, StringConstraints(min_length=1, max_length=255)]
# Decimal strings only, as psbridge takes them (a JSON number is refused).
DecimalText = Annotated[str, StringConstraints(pattern=r"^-?\d{1,12}(\.\d{1,6})?$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resource(_Strict):
    external_id: Text
    name: str | None = Field(default=None, max_length=255)
    role: Text
    cost_rate: DecimalText | None = None


class TimeEntry(_Strict):
    external_id: Text
    contract_id: UUID
    resource: Resource
    work_date: date
    hours: DecimalText
    description: str | None = Field(default=None, max_length=2000)
    approved_at: AwareDatetime | None = None


class Batch(_Strict):
    source: Text
    entries: list[TimeEntry] = Field(max_length=5000)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


async def _batch(request: Request) -> Batch | Response:
    """The validated batch, or the 422 answer."""
    try:
        return Batch.model_validate_json(await request.body())
    except ValidationError as exc:
        return _json({"errors": exc.errors(include_url=False, include_context=False, include_input=False)}, 422)


async def time_entries(request: Request) -> Response:
    batch = await _batch(request)
    if isinstance(batch, Response):
        return batch
    entries = batch.entries
    pool: asyncpg.Pool = request.app.state.pool
    inserted = await pool.fetch(
        INSERT,
        batch.source,
        [e.external_id for e in entries],
        [e.contract_id for e in entries],
        [e.resource.external_id for e in entries],
        [e.resource.name for e in entries],
        [e.resource.role for e in entries],
        [None if e.resource.cost_rate is None else Decimal(e.resource.cost_rate) for e in entries],
        [e.work_date for e in entries],
        [Decimal(e.hours) for e in entries],
        [e.description for e in entries],
        [e.approved_at for e in entries],
    )
    new = {r["external_id"] for r in inserted}
    return _json(
        {
            "results": [
                {"external_id": e.external_id, "status": "accepted" if e.external_id in new else "duplicate"}
                for e in entries
            ]
        }
    )


async def floor_time_entries(request: Request) -> Response:
    from app.db import insert_tables
    from app.ids import new_ids

    batch = await _batch(request)
    if isinstance(batch, Response):
        return batch
    entries = batch.entries
    pool: asyncpg.Pool = request.app.state.floor_pool
    rates: dict[tuple[UUID, str], tuple[Decimal, str]] = request.app.state.rates
    unknown = sorted({e.contract_id for e in entries if (e.contract_id, e.resource.role) not in rates})
    if unknown:
        for r in await pool.fetch(
            """select r.contract_id, r.role, r.rate, c.currency from rate_card_entry r
               join contract c on c.id = r.contract_id where r.contract_id = any($1::uuid[])""",
            unknown,
        ):
            rates[(r["contract_id"], r["role"])] = (r["rate"], r["currency"])
    cid = request.headers.get("x-correlation-id")
    ids, txn_ids = new_ids(len(entries)), new_ids(len(entries))
    rows, versions, txns, events, results = [], [], [], [], []
    for i, t, e in zip(ids, txn_ids, entries, strict=True):
        rate, currency = rates[(e.contract_id, e.resource.role)]
        hours = Decimal(e.hours)
        cost_rate = None if e.resource.cost_rate is None else Decimal(e.resource.cost_rate)
        amount = (hours * rate).quantize(Decimal("0.01"))
        cost = None if cost_rate is None else (hours * cost_rate).quantize(Decimal("0.01"))
        rows.append((
            i, "time", batch.source, e.external_id, e.contract_id, 1, "accepted", "billable", amount, e.work_date,
            e.resource.role, rate, cost, cid, amount,
        ))  # fmt: skip
        versions.append((
            i, 1, e.resource.external_id, e.resource.name, e.resource.role, cost_rate, e.work_date, hours,
            e.description, e.approved_at, e.external_id, cid,
        ))  # fmt: skip
        txns.append((
            t, e.contract_id, i, 1, "time", "time_entry", str(i), e.work_date, e.resource.role, rate, hours,
            amount, currency, cost, "billable", "unbilled", cid,
        ))  # fmt: skip
        payload = {"external_id": e.external_id, "contract_id": str(e.contract_id), "amount": str(amount)}
        events.append(("entry.accepted", "work_entry", str(i), payload, cid))
        results.append({"external_id": e.external_id, "status": "accepted", "billing": "billable",
                        "amount": str(amount), "currency": currency})  # fmt: skip
    async with pool.acquire() as conn, conn.transaction():
        await insert_tables(
            conn,
            [("work_entry", _ENTRY, rows), ("work_entry_version", _VERSION, versions),
             ("billing_transaction", _TXN, txns), ("outbox_event", _EVENT, events)],
        )  # fmt: skip
    return _json({"results": results})


async def healthz(request: Request) -> Response:
    return _json({"status": "ok"})


def create_app(database_url: str) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        from app.db import create_pool

        async with asyncpg.create_pool(database_url, min_size=POOL_MIN, max_size=POOL_MAX) as pool:
            floor_pool = await create_pool(database_url, POOL_MIN, POOL_MAX)  # psbridge's codecs
            app.state.pool, app.state.floor_pool, app.state.rates = pool, floor_pool, {}
            try:
                yield
            finally:
                await floor_pool.close()

    return Starlette(
        routes=[
            Route("/time-entries", time_entries, methods=["POST"]),
            Route("/floor/time-entries", floor_time_entries, methods=["POST"]),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.ingestion_baseline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    database_url = os.environ["PSBRIDGE_DATABASE_URL"]
    # As ``psbridge serve`` runs uvicorn: one process, default loop and HTTP implementations.
    uvicorn.run(create_app(database_url), host=args.host, port=args.port, log_level="warning", proxy_headers=False)


if __name__ == "__main__":
    main()
