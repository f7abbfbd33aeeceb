"""The ``psbridge`` command: serve, worker, sandbox, migrate, seed, clients, and ``dev`` (what ``make run`` runs)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import typer

from app.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="psbridge: contracts to posted invoices.")
clients_app = typer.Typer(no_args_is_help=True, help="API clients and their keys.")
app.add_typer(clients_app, name="clients")

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".psbridge"


@app.command()
def serve(host: str = typer.Option(None), port: int = typer.Option(None)) -> None:
    """Run the API (uvicorn)."""
    import uvicorn

    settings = Settings()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_level="warning",
        proxy_headers=False,
    )


@app.command()
def worker() -> None:
    """Run an arq worker (ERP posting, propagation, feedback, the sweeper)."""
    from app.worker import build_worker

    build_worker(Settings()).run()


@app.command()
def sandbox(host: str = "127.0.0.1", port: int = typer.Option(None)) -> None:
    """Run the simulated CRM, PSA, ERP, tax and FX backends."""
    from sandbox import run

    run(host=host, port=port or Settings().sandbox_port)


@app.command()
def migrate() -> None:
    """Apply pending migrations (safe to run from several processes at once)."""
    from app.migrate import migrate as run_migrations

    applied = asyncio.run(run_migrations(Settings().required_database_url))
    typer.echo(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""), err=True)


@clients_app.command("create")
def clients_create(
    name: str, role: str = typer.Option(..., "--role"), customer: str = typer.Option(None, "--customer")
) -> None:
    """Create an API client; prints its key (shown once) and nothing else on stdout."""
    from app.auth import create_client
    from app.db import Database, create_pool
    from app.errors import DomainError

    async def _create() -> str:
        pool = await create_pool(Settings().required_database_url, 1, 1)
        try:
            async with Database(pool).transaction() as conn:
                _, key = await create_client(conn, name, role, customer)
                return key
        finally:
            await pool.close()

    try:
        typer.echo(asyncio.run(_create()))
    except DomainError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(2) from None


@app.command()
def dev(
    port: int = typer.Option(None),
    sandbox_port: int = typer.Option(None),
    data_dir: Path = typer.Option(
        DATA_DIR, "--data-dir", envvar="PSBRIDGE_DATA_DIR", help="Embedded servers' data and demo-keys.json."
    ),
) -> None:
    """Everything for a local demo: services (or embedded ones), migrations, seed, API, worker, sandbox."""
    from app.devservers import port_open, resolve_services

    # SIGTERM (and SIGHUP) stop the demo like Ctrl-C does: the finally below stops what was started.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    base = Settings()
    api_port = port or base.port
    sbx_port = sandbox_port or base.sandbox_port
    for what, p in (("API", api_port), ("sandbox", sbx_port)):
        if port_open("127.0.0.1", p):
            raise SystemExit(f"port {p} for the {what} is already in use (another psbridge dev?); pick another")
    data_dir = data_dir.expanduser().resolve()
    procs: list[subprocess.Popen[bytes]] = []
    handle = None
    try:
        urls, handle = resolve_services(data_dir, base.database_url, base.redis_url, "psbridge")
        env = {
            **os.environ,
            "PSBRIDGE_DATABASE_URL": urls.database_url,
            "PSBRIDGE_REDIS_URL": urls.redis_url,
            "PSBRIDGE_PORT": str(api_port),
            "PSBRIDGE_SANDBOX_PORT": str(sbx_port),
            **{
                f"PSBRIDGE_{s}_URL": f"http://127.0.0.1:{sbx_port}/{s.lower()}"
                for s in ("CRM", "PSA", "ERP", "TAX", "FX")
            },
        }
        os.environ.update(env)
        settings = Settings()
        _info(
            f"PostgreSQL: {_redact(urls.database_url)}  Redis: {urls.redis_url}"
            + ("  (embedded)" if urls.embedded else "")
        )
        from app.migrate import migrate as run_migrations

        asyncio.run(run_migrations(urls.database_url))
        procs.append(_spawn(["sandbox", "--port", str(sbx_port)], env))
        _wait_http(f"http://127.0.0.1:{sbx_port}/healthz", procs)
        keys_file = data_dir / "demo-keys.json"
        keys = asyncio.run(_seed_before_api(settings, keys_file))
        procs.append(_spawn(["serve"], env))
        procs.append(_spawn(["worker"], env))
        api = f"http://127.0.0.1:{api_port}"
        _wait_http(f"{api}/readyz", procs)
        contract = asyncio.run(_seed_contract(api, keys["demo-integration"]))
        _banner(api, sbx_port, keys, contract, keys_file)
        _watch(procs)
    except KeyboardInterrupt:
        _info("stopping...")
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        _stop(procs)
        if handle is not None:
            handle.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


async def _seed_before_api(settings: Settings, keys_file: Path) -> dict[str, str]:
    from app.db import Database, create_pool
    from app.seed import demo_keys, seed_erp_customers, seed_master_data

    pool = await create_pool(settings.required_database_url, 1, 2)
    try:
        db = Database(pool)
        await seed_master_data(db)
        async with httpx.AsyncClient(timeout=10) as http:
            await seed_erp_customers(http, settings.erp_url)
        return await demo_keys(db, keys_file)
    finally:
        await pool.close()


async def _seed_contract(api: str, key: str) -> dict[str, object]:
    from app.seed import seed_contracts

    async with httpx.AsyncClient(timeout=30) as http:
        return await seed_contracts(http, api, key)


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "app.cli", *args], env=env, cwd=ROOT)


def _wait_http(url: str, procs: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise SystemExit(f"a process exited while waiting for {url}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not become ready within {timeout:.0f}s")


def _watch(procs: list[subprocess.Popen[bytes]]) -> None:
    while all(p.poll() is None for p in procs):
        time.sleep(0.5)
    dead = ", ".join(f"{_name(p)} (exit {p.returncode})" for p in procs if p.poll() is not None)
    raise SystemExit(f"stopping everything: a process exited: {dead}")


def _name(proc: subprocess.Popen[bytes]) -> str:
    args = proc.args
    return str(args[3]) if isinstance(args, list) and len(args) > 3 else str(args)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def _redact(url: str) -> str:
    return url.split("@")[-1] if "@" in url else url


def _info(text: str) -> None:
    typer.echo(text, err=True)


def _banner(api: str, sbx_port: int, keys: dict[str, str], contract: dict[str, object], keys_file: Path) -> None:
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
