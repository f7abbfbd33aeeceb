"""Probing servers: TCP ports, the local default-port servers, and creating the target database."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg
import redis

log = logging.getLogger("psbridge.dev.servers")

LOCAL_HOST = "127.0.0.1"
LOCAL_PG_PORT = 5432
LOCAL_REDIS_PORT = 6379
PROBE_TIMEOUT = 0.3


# -------------------------------------------------------------------------------------------- ports


def port_open(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    """True if a TCP connection to host:port succeeds within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = LOCAL_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


# ----------------------------------------------------------------------------------------- database


def run_async(factory: Callable[[], Any]) -> Any:
    """Run ``factory()``'s coroutine to completion in a fresh event loop on a helper thread.

    Works whether or not the calling thread already runs an event loop.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="devservers") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def database_of(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _ensure_database_async(url: str, timeout: float) -> bool:
    database = database_of(url)
    try:
        conn = await asyncpg.connect(url, timeout=timeout)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return False
    last_error: Exception | None = None
    for maintenance_db in ("postgres", "template1"):
        try:
            conn = await asyncpg.connect(with_database(url, maintenance_db), timeout=timeout)
        except asyncpg.InvalidCatalogNameError as exc:
            last_error = exc
            continue
        try:
            await conn.execute(f"CREATE DATABASE {_quote_ident(database)}")
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            return False  # created concurrently (a race shows up as a pg_database unique violation)
        finally:
            await conn.close()
        log.info("created database %r", database)
        return True
    assert last_error is not None
    raise last_error


def ensure_database(database_url: str, *, timeout: float = 5.0) -> bool:
    """Create the database named in ``database_url`` if it does not exist. Returns True if created.

    Connects to the target database first; only if that fails with "database does not exist" does it
    connect to ``postgres`` (or ``template1``) on the same server and ``CREATE DATABASE``. Requires a
    database name in the URL path. Raises on connection/auth errors.
    """
    if not database_of(database_url):
        raise ValueError(f"no database name in {database_url!r}")
    return run_async(lambda: _ensure_database_async(database_url, timeout))


async def _recreate_database_async(url: str, timeout: float) -> None:
    database = _quote_ident(database_of(url))
    try:
        conn = await asyncpg.connect(with_database(url, "postgres"), timeout=timeout)
    except asyncpg.InvalidCatalogNameError:
        conn = await asyncpg.connect(with_database(url, "template1"), timeout=timeout)
    try:
        # FORCE: sessions left on it (a worker of a crashed run) must not block the drop.
        await conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {database}")
    finally:
        await conn.close()


def recreate_database(database_url: str, *, timeout: float = 10.0) -> None:
    """Drop the database named in ``database_url`` (ending its sessions) and create it empty."""
    if not database_of(database_url):
        raise ValueError(f"no database name in {database_url!r}")
    run_async(lambda: _recreate_database_async(database_url, timeout))


# -------------------------------------------------------------------------------- local default ports


def local_postgres(database_name: str) -> str | None:
    """URL of a usable PostgreSQL on 127.0.0.1:5432 (user ``postgres``, no password), creating the database."""
    if not port_open(LOCAL_HOST, LOCAL_PG_PORT):
        return None
    url = f"postgresql://postgres@{LOCAL_HOST}:{LOCAL_PG_PORT}/{database_name}"
    try:
        ensure_database(url, timeout=3.0)
    except Exception as exc:  # auth required, not PostgreSQL, ...: use the embedded one instead
        log.warning("PostgreSQL on %s:%s is not usable as postgres without password (%r)",
                    LOCAL_HOST, LOCAL_PG_PORT, exc)  # fmt: skip
        return None
    return url


def local_redis() -> str | None:
    """URL of a Redis on 127.0.0.1:6379 that answers PING without auth, else None."""
    if not port_open(LOCAL_HOST, LOCAL_REDIS_PORT):
        return None
    try:
        with redis.Redis(host=LOCAL_HOST, port=LOCAL_REDIS_PORT, db=0, socket_timeout=1,
                         socket_connect_timeout=PROBE_TIMEOUT) as r:  # fmt: skip
            r.ping()
    except (redis.RedisError, OSError) as exc:
        log.warning("Redis on %s:%s does not answer PING without auth (%r)", LOCAL_HOST, LOCAL_REDIS_PORT, exc)
        return None
    return f"redis://{LOCAL_HOST}:{LOCAL_REDIS_PORT}/0"
