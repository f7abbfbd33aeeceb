"""Shared fixtures: a fresh PostgreSQL database per run (dropped afterwards), real Redis, the sandbox
mounted in-process, and the app under its real lifespan."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.access import ROLES
from app.auth import create_client
from app.bootstrap import Services, build_services
from app.db import Database
from app.dev.seed import ERP_CUSTOMERS, LEGAL_ENTITIES, seed_master_data
from app.dev.servers import ServiceUrls, resolve_services
from app.main import create_app
from app.migrate import migrate
from app.settings import Settings
from app.worker import build_worker
from sandbox import create_sandbox_app
from tests.factories import auth

ROOT = Path(__file__).resolve().parent.parent
KEEP_TABLES = {"schema_migration", "field_ownership", "exception_kind"}


@pytest.fixture(scope="session")
def service_urls() -> Iterator[ServiceUrls]:
    """Configured servers, else the local ones, else embedded (same rule as `make run`)."""
    urls, handle = resolve_services(
        ROOT / ".psbridge" / "test-services",
        os.environ.get("PSBRIDGE_DATABASE_URL"),
        os.environ.get("PSBRIDGE_REDIS_URL"),
        "postgres",
    )
    with handle:
        yield urls


@pytest.fixture(scope="session")
async def database_url(service_urls: ServiceUrls) -> AsyncIterator[str]:
    """A database created for this run and dropped at its end; nothing else is touched."""
    name = f"psbridge_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(service_urls.database_url)
    try:
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()
    base, _, _ = service_urls.database_url.rpartition("/")
    url = f"{base}/{name}"
    await migrate(url)
    yield url
    admin = await asyncpg.connect(service_urls.database_url)
    try:
        await admin.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def settings(database_url: str, service_urls: ServiceUrls) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        env="test",
        database_url=database_url,
        redis_url=service_urls.redis_url,
        queue_name=f"psbridge:test:{uuid.uuid4().hex[:8]}",
        crm_url="http://sandbox/crm",
        psa_url="http://sandbox/psa",
        erp_url="http://sandbox/erp",
        tax_url="http://sandbox/tax",
        fx_url="http://sandbox/fx",
        default_rate_limit="100000/minute",
        job_max_tries=3,
        job_time_budget_seconds=0,  # three tries, whatever the time: failures land at once
    )


@pytest.fixture
def sandbox_app():  # noqa: ANN201 - a Starlette app
    return create_sandbox_app()


@pytest.fixture
def sandbox_transport(sandbox_app) -> httpx.ASGITransport:  # noqa: ANN001
    return httpx.ASGITransport(app=sandbox_app)


@pytest.fixture
async def sandbox(sandbox_transport: httpx.ASGITransport) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=sandbox_transport, base_url="http://sandbox") as client:
        for external_id, (name, subsidiary) in ERP_CUSTOMERS.items():
            response = await client.put(
                f"/erp/services/rest/record/v1/customer/eid:{external_id}",
                json={"companyName": name, "subsidiary": subsidiary},
            )
            assert response.status_code == 204
        yield client


@pytest.fixture
async def services(settings: Settings, sandbox_transport: httpx.ASGITransport) -> AsyncIterator[Services]:
    async with build_services(settings, sandbox_transport) as built:
        await _truncate(built.db)
        await seed_master_data(built.db)
        # Circuit breakers remember calls across tests (one queue name per session): each test starts closed.
        stale = await built.queue.pool.keys(f"psbridge:circuit:{settings.queue_name}:*")
        if stale:
            await built.queue.pool.delete(*stale)
        yield built


async def _truncate(db: Database) -> None:
    async with db.transaction() as conn:
        tables = [
            r["tablename"]
            for r in await conn.fetch("select tablename from pg_tables where schemaname = 'public'")
            if r["tablename"] not in KEEP_TABLES
        ]
        await conn.execute("truncate " + ", ".join(f'"{t}"' for t in tables) + " restart identity cascade")


@pytest.fixture
async def api(
    settings: Settings, sandbox_transport: httpx.ASGITransport, services: Services, sandbox: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, sandbox_transport)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://psbridge") as client:
            yield client


@pytest.fixture
async def keys(services: Services) -> dict[str, str]:
    """One API key per role (the customer key is bound to ACME-001, which psbridge must know first)."""
    out = {}
    async with services.db.transaction() as conn:
        await conn.execute(
            "insert into customer (id, external_id, name) values ($1, 'ACME-001', 'Acme Holdings')", uuid.uuid4()
        )
        for role in ROLES:
            customers = ["ACME-001"] if role == "customer" else []
            _, out[role] = await create_client(conn, f"test-{role}", role, customers=customers)
    return out


@pytest.fixture
def run_jobs(settings: Settings, sandbox_transport: httpx.ASGITransport):  # noqa: ANN201
    """Run a burst arq worker until the queue is empty (jobs in-process, Redis real)."""

    async def _run() -> None:
        worker = build_worker(settings, sandbox_transport, burst=True, poll_delay=0.05, cron_jobs=[])
        try:
            await worker.async_run()
        finally:
            await worker.close()

    return _run


__all__ = ["LEGAL_ENTITIES", "asyncio", "auth"]
