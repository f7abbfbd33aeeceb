"""``psbridge dev`` (what ``make run`` runs): services, migrations, the sandbox, the demo seed, a worker
and the API, until the user stops it or one of them dies.

It ends with exactly one line: ``stopped: ...`` after a stop the user asked for (exit 0), or an error
naming what failed and what was then stopped (exit 1).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer

from app.dev.report import one_line, redact
from app.dev.reset import reset_demo
from app.dev.servers import ServiceUrls, port_open, resolve_services
from app.dev.supervisor import Child, StopRequested, Supervisor
from app.settings import Settings

__all__ = ["DATABASE_NAME", "DemoFailed", "DemoOptions", "run_demo"]

ROOT = Path(__file__).resolve().parents[2]
DATABASE_NAME = "psbridge"
BACKENDS = ("CRM", "PSA", "ERP", "TAX", "FX")
READY_TIMEOUT = 60.0


class DemoFailed(Exception):
    """The one line dev ends with when it did not stop on request."""


@dataclass(frozen=True)
class DemoOptions:
    api_port: int
    sandbox_port: int
    data_dir: Path
    reset: bool = False

    @property
    def keys_file(self) -> Path:
        return self.data_dir / "demo-keys.json"

    @property
    def sandbox_state_file(self) -> Path:
        return self.data_dir / "sandbox-state.json"


def run_demo(options: DemoOptions) -> None:
    """Run the demo until a stop is asked (returns) or something fails (raises DemoFailed)."""
    supervisor = Supervisor()
    supervisor.install_signal_handlers()
    for what, port in (("API", options.api_port), ("sandbox", options.sandbox_port)):
        if port_open("127.0.0.1", port):
            raise DemoFailed(f"port {port} for the {what} is already in use (another psbridge dev?); pick another")
    services = contextlib.ExitStack()
    embedded: list[str] = []
    try:
        failure = _until_stopped_or_failed(options, supervisor, services, embedded)
    finally:
        stopped = supervisor.stop_all()
        services.close()
    stopped += [f"embedded {' and '.join(embedded)}"] if embedded else []
    what = ", ".join(stopped) or "nothing was running yet"
    if failure is None or supervisor.stop_asked:
        # A stop the user asked for is clean, whatever else happened meanwhile.
        typer.echo(f"stopped: {what}", err=True)
        return
    raise DemoFailed(f"{failure}; stopped: {what}") from failure.__cause__


def _until_stopped_or_failed(
    options: DemoOptions, supervisor: Supervisor, services: contextlib.ExitStack, embedded: list[str]
) -> DemoFailed | None:
    """None after a stop the user asked for, else what failed (a child exiting on its own included)."""
    try:
        try:
            crashed = _run(options, supervisor, services, embedded)
            return DemoFailed(f"the {crashed.name} exited on its own ({crashed.exit_description})")
        except DemoFailed as exc:
            return exc
        except Exception as exc:
            failure = DemoFailed(one_line(exc))
            failure.__cause__ = exc
            return failure
    except StopRequested:  # also when it arrives while a failure above is being handled
        return None


def _run(options: DemoOptions, supervisor: Supervisor, services: contextlib.ExitStack, embedded: list[str]) -> Child:
    base = Settings()
    if options.reset and base.env == "production":
        raise DemoFailed("--reset drops a database: refused with PSBRIDGE_ENV=production")
    urls, handle = resolve_services(options.data_dir, base.database_url, base.redis_url, DATABASE_NAME)
    services.enter_context(handle)
    embedded.extend(name for name, source in _sources(urls) if source == "embedded")
    supervisor.checkpoint()
    settings, env = _child_settings(urls, options)
    if options.reset:
        files = (options.sandbox_state_file, options.keys_file)
        _info(reset_demo(urls.database_url, urls.redis_url, settings.queue_name, files))
    _info(f"PostgreSQL: {redact(urls.database_url)}  Redis: {urls.redis_url}" + ("  (embedded)" if embedded else ""))
    from app.migrate import migrate

    asyncio.run(migrate(urls.database_url))
    sandbox_args = ["sandbox", "--port", str(options.sandbox_port), "--state-file", str(options.sandbox_state_file)]
    supervisor.spawn("sandbox", _cli(*sandbox_args), env, ROOT)
    _wait_http(f"http://127.0.0.1:{options.sandbox_port}/healthz", supervisor)
    keys = asyncio.run(_seed_before_api(settings, options.keys_file))
    # Started worker then API, so the API, which takes the traffic, is stopped first.
    supervisor.spawn("worker", _cli("worker"), env, ROOT)
    supervisor.spawn("API", _cli("serve"), env, ROOT)
    api = f"http://127.0.0.1:{options.api_port}"
    _wait_http(f"{api}/readyz", supervisor)
    # The CRM owns contract terms, the PSA time entries (field ownership): each seeds with its own key.
    contract = asyncio.run(_seed_contract(api, keys["demo-crm"], keys["demo-psa"]))
    supervisor.checkpoint()
    keys |= asyncio.run(_portal_keys(settings, options.keys_file))
    _banner(api, options.sandbox_port, keys, contract, options.keys_file)
    return supervisor.watch()


def _sources(urls: ServiceUrls) -> list[tuple[str, str]]:
    return [("PostgreSQL", urls.database_source), ("Redis", urls.redis_source)]


def _child_settings(urls: ServiceUrls, options: DemoOptions) -> tuple[Settings, dict[str, str]]:
    """The settings all parts of the demo share: as Settings for dev, as environment for its children."""
    overrides = {
        "DATABASE_URL": urls.database_url,
        "REDIS_URL": urls.redis_url,
        "PORT": str(options.api_port),
        "SANDBOX_PORT": str(options.sandbox_port),
        **{f"{s}_URL": f"http://127.0.0.1:{options.sandbox_port}/{s.lower()}" for s in BACKENDS},
    }
    env = {**os.environ, **{f"PSBRIDGE_{name}": value for name, value in overrides.items()}}
    fields: dict[str, Any] = {name.lower(): value for name, value in overrides.items()}  # validated by Settings
    return Settings(**fields), env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", *args]


def _wait_http(url: str, supervisor: Supervisor, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child = supervisor.exited()
        if child is not None:
            raise DemoFailed(f"the {child.name} exited while starting ({child.exit_description})")
        supervisor.checkpoint()
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise DemoFailed(f"{url} did not become ready within {timeout:.0f}s")


async def _seed_before_api(settings: Settings, keys_file: Path) -> dict[str, str]:
    from app.db import Database, create_pool
    from app.dev.seed import STAFF_CLIENTS, demo_keys, seed_erp_customers, seed_master_data

    pool = await create_pool(settings.required_database_url, 1, 2)
    try:
        db = Database(pool)
        await seed_master_data(db)
        async with httpx.AsyncClient(timeout=10) as http:
            await seed_erp_customers(http, settings.erp_url)
        return await demo_keys(db, keys_file, STAFF_CLIENTS)
    finally:
        await pool.close()


async def _seed_contract(api: str, crm_key: str, psa_key: str) -> dict[str, Any]:
    from app.dev.seed import seed_contracts

    async with httpx.AsyncClient(timeout=30) as http:
        return await seed_contracts(http, api, crm_key, psa_key)


async def _portal_keys(settings: Settings, keys_file: Path) -> dict[str, str]:
    """After the contract: its customer is now known to psbridge, so its portal key may be minted."""
    from app.db import Database, create_pool
    from app.dev.seed import PORTAL_CLIENTS, demo_keys

    pool = await create_pool(settings.required_database_url, 1, 1)
    try:
        return await demo_keys(Database(pool), keys_file, PORTAL_CLIENTS)
    finally:
        await pool.close()


def _info(text: str) -> None:
    typer.echo(text, err=True)


def _banner(api: str, sbx_port: int, keys: dict[str, str], contract: dict[str, Any], keys_file: Path) -> None:
    lines = [
        "",
        "psbridge is running",
        f"  API            {api}",
        f"  API docs       {api}/docs",
        f"  GraphiQL       {api}/graphql",
        f"  Dashboard      {api}/dashboard",
        f"  Sandbox        http://127.0.0.1:{sbx_port}  (ERP, PSA, CRM, tax, FX)",
        f"  Demo contract  SOW-2026-014 (Acme) id={contract.get('id')} status={contract.get('status')}",
        f"  Demo API keys (also in {keys_file}):",
        *[f"    {name:<18} {key}" for name, key in keys.items()],
        "Ctrl-C stops everything.",
        "",
    ]
    typer.echo("\n".join(lines))
