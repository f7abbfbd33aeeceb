"""Choosing each service (configured URL -> local default port -> embedded) and waiting until both answer."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import asyncpg
import redis

from app.dev.servers.embedded_postgres import EmbeddedPostgres
from app.dev.servers.embedded_redis import EmbeddedRedis
from app.dev.servers.leases import start_leased
from app.dev.servers.probe import database_of, ensure_database, local_postgres, local_redis, run_async, with_database

log = logging.getLogger("psbridge.dev.servers")

Source = Literal["configured", "local", "embedded"]


@dataclass(frozen=True)
class ServiceUrls:
    """Where the services are. ``embedded`` is True if either service is an embedded one."""

    database_url: str
    redis_url: str
    embedded: bool
    database_source: Source = "configured"
    redis_source: Source = "configured"


def resolve_services(
    data_dir: Path,
    database_url: str | None,
    redis_url: str | None,
    database_name: str = "psbridge",
    *,
    probe_local: bool = True,
) -> tuple[ServiceUrls, contextlib.ExitStack]:
    """Pick PostgreSQL and Redis (configured URL -> local default port -> embedded under ``data_dir``).

    Returns the URLs and an ExitStack; closing it (``handle.close()`` or ``with handle:``) releases the
    embedded servers this call started or adopted (the last handle on a data dir stops them). For the
    configured/local choices closing is a no-op. ``probe_local=False`` skips step 2.

    A configured database URL without a database name gets ``database_name``. The target database is
    created if missing. Errors on a configured URL are raised, never fallen back from.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    stack = contextlib.ExitStack()
    try:
        db_url, db_source = _database(stack, data_dir, database_url, database_name, probe_local)
        r_url, r_source = _redis(stack, data_dir, redis_url, probe_local)
    except BaseException:
        stack.close()
        raise
    urls = ServiceUrls(
        database_url=db_url,
        redis_url=r_url,
        embedded="embedded" in (db_source, r_source),
        database_source=db_source,
        redis_source=r_source,
    )
    log.info("PostgreSQL: %s (%s); Redis: %s (%s)", db_url, db_source, r_url, r_source)
    return urls, stack


def resolve_database(
    data_dir: Path, database_url: str | None, database_name: str = "psbridge", *, probe_local: bool = True
) -> tuple[str, Source, contextlib.ExitStack]:
    """PostgreSQL alone, chosen like :func:`resolve_services` does (for commands that need no Redis)."""
    data_dir = Path(data_dir).expanduser().resolve()
    stack = contextlib.ExitStack()
    try:
        url, source = _database(stack, data_dir, database_url, database_name, probe_local)
    except BaseException:
        stack.close()
        raise
    log.info("PostgreSQL: %s (%s)", url, source)
    return url, source, stack


def _database(
    stack: contextlib.ExitStack, data_dir: Path, database_url: str | None, database_name: str, probe_local: bool
) -> tuple[str, Source]:
    if database_url:
        url = database_url if database_of(database_url) else with_database(database_url, database_name)
        ensure_database(url)
        return url, "configured"
    local = local_postgres(database_name) if probe_local else None
    if local is not None:
        return local, "local"
    pg = EmbeddedPostgres(data_dir / "pg")
    port = start_leased(stack, data_dir, "pg", pg.start, pg.stop)
    url = f"postgresql://postgres@{pg.host}:{port}/{database_name}"
    ensure_database(url)
    return url, "embedded"


def _redis(stack: contextlib.ExitStack, data_dir: Path, redis_url: str | None, probe_local: bool) -> tuple[str, Source]:
    if redis_url:
        return redis_url, "configured"
    local = local_redis() if probe_local else None
    if local is not None:
        return local, "local"
    server = EmbeddedRedis(data_dir / "redis")
    start_leased(stack, data_dir, "redis", server.start, server.stop)
    return server.url, "embedded"


@contextlib.contextmanager
def running_services(
    data_dir: Path,
    database_url: str | None,
    redis_url: str | None,
    database_name: str = "psbridge",
    *,
    probe_local: bool = True,
) -> Iterator[ServiceUrls]:
    """Context-manager form of :func:`resolve_services`."""
    urls, handle = resolve_services(data_dir, database_url, redis_url, database_name, probe_local=probe_local)
    with handle:
        yield urls


def wait_ready(urls: ServiceUrls, timeout: float = 30.0) -> None:
    """Block until PostgreSQL answers ``select 1`` and Redis answers ``PING`` (or raise TimeoutError)."""
    deadline = time.monotonic() + timeout

    async def pg_ok() -> None:
        conn = await asyncpg.connect(urls.database_url, timeout=2)
        try:
            await conn.fetchval("select 1")
        finally:
            await conn.close()

    while True:
        try:
            run_async(pg_ok)
            with redis.Redis.from_url(urls.redis_url, socket_timeout=2, socket_connect_timeout=2) as r:
                r.ping()
            return
        except (TimeoutError, OSError, asyncpg.PostgresError, redis.RedisError) as exc:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"services not ready after {timeout}s: {exc!r}") from exc
            time.sleep(0.2)
