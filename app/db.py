"""The PostgreSQL pool (asyncpg) with JSON codecs, and the transaction helper services use.

Services never import asyncpg: they ask ``Database.transaction()`` for a ``Connection``
and hand it to the SQL functions of their ``store`` module.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import asyncpg
import orjson

__all__ = ["Connection", "Database", "create_pool", "dumps", "TableRows", "insert_rows", "insert_tables", "loads"]

T = TypeVar("T")


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, uuid.UUID):  # asyncpg's own UUID type, which orjson does not know
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(value: Any) -> str:
    return orjson.dumps(value, default=_default).decode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)


class Connection(Protocol):
    """The slice of asyncpg's connection that store functions use."""

    async def execute(self, query: str, *args: Any) -> str: ...
    async def executemany(self, command: str, args: Any) -> None: ...
    async def fetch(self, query: str, *args: Any) -> list[Any]: ...
    async def fetchrow(self, query: str, *args: Any) -> Any: ...
    async def fetchval(self, query: str, *args: Any) -> Any: ...
    async def copy_records_to_table(self, table_name: str, *, records: Any, columns: Any = None) -> str: ...


def _json_bytes(value: Any) -> bytes:
    return orjson.dumps(value, default=_default)


def _jsonb_bytes(value: Any) -> bytes:
    return b"\x01" + orjson.dumps(value, default=_default)  # jsonb's binary format: version 1, then the text


def _jsonb_value(data: bytes) -> Any:
    return orjson.loads(data[1:])


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Binary codecs: COPY can write json and jsonb columns too (it speaks only the binary format).
    await conn.set_type_codec("json", encoder=_json_bytes, decoder=loads, schema="pg_catalog", format="binary")
    await conn.set_type_codec("jsonb", encoder=_jsonb_bytes, decoder=_jsonb_value, schema="pg_catalog", format="binary")


COPY_FROM_ROWS = 64  # below this, one pipelined INSERT beats COPY's two round trips


async def insert_rows(conn: Connection, table: str, columns: list[str], records: list[tuple[Any, ...]]) -> None:
    """Insert many rows: by COPY when there are many, by one pipelined ``executemany`` when few."""
    if not records:
        return
    if len(records) >= COPY_FROM_ROWS:
        await conn.copy_records_to_table(table, records=records, columns=columns)
        return
    marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    await conn.executemany(f"insert into {table} ({', '.join(columns)}) values ({marks})", records)


TableRows = tuple[str, list[str], list[tuple[Any, ...]]]  # (table, columns, rows)


async def insert_tables(conn: Connection, writes: Sequence[TableRows]) -> None:
    """New rows of several tables, in the order given (parents before children). A few in all: one
    statement, a CTE per table reading its rows from JSON (``json_populate_recordset`` types them by
    the table's own columns; foreign keys are checked at the end of the statement), one round trip
    instead of one per table. Many: each table by ``insert_rows`` (COPY)."""
    writes = [w for w in writes if w[2]]
    if not writes:
        return
    if sum(len(records) for _, _, records in writes) >= COPY_FROM_ROWS:
        for table, columns, records in writes:
            await insert_rows(conn, table, columns, records)
        return
    ctes = []
    for n, (table, columns, _) in enumerate(writes, start=1):
        names = ", ".join(columns)
        rows = f"json_populate_recordset(null::{table}, ${n}::json)"
        ctes.append(f"w{n} as (insert into {table} ({names}) select {names} from {rows})")
    await conn.execute(
        f"with {', '.join(ctes)} select 1",
        *([dict(zip(columns, r, strict=True)) for r in records] for _, columns, records in writes),
    )


async def _release(conn: asyncpg.Connection) -> None:
    """What a connection needs before it goes back to the pool: no open transaction.

    asyncpg's default reset also runs ``RESET ALL``, ``UNLISTEN *``, ``CLOSE ALL`` and unlocks
    session advisory locks — one more round trip per request for state psbridge never leaves
    behind (it sets only ``SET LOCAL``, takes only transaction-scoped advisory locks, never listens).
    """
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(dsn: str, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, reset=_release, command_timeout=60
    )


class Database:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def retrying(self, work: Callable[[Connection], Awaitable[T]], attempts: int = 3) -> T:
        """Run ``work`` in a transaction, again from the start when PostgreSQL aborts it for a conflict
        another transaction caused (a deadlock, a unique key a concurrent insert took first)."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.transaction() as conn:
                    return await work(conn)
            except (asyncpg.DeadlockDetectedError, asyncpg.UniqueViolationError, asyncpg.SerializationError):
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A connection without a transaction: for reads that need no snapshot."""
        async with self.pool.acquire() as conn:
            yield conn

    async def ping(self) -> bool:
        async with self.pool.acquire() as conn:
            return bool(await conn.fetchval("select true"))
