"""The ``psbridge`` command line as a user meets it: it finds PostgreSQL and Redis the way ``make run``
does, ``clients create`` prints the key and nothing else, and every error is one line, never a traceback.

Each test points the command at a database of its own through ``PSBRIDGE_DATABASE_URL``, except the one
that runs with an empty environment, which can only reach the local ``psbridge`` database: it uses a
request refused before anything is written, and drops that database afterwards only if it created it.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis

from app.bootstrap import Services
from app.dev.servers import ServiceUrls, port_open
from tests.e2e.support import (
    clean_env,
    free_port,
    http_ok,
    in_fresh_loop,
    processes,
    scratch_database,
    scratch_queue,
    sql,
    wait_for,
)
from tests.factories import acme, auth, register

pytestmark = pytest.mark.e2e

PSBRIDGE = Path(sys.executable).with_name("psbridge")  # the console script `pip install` made
KEY_LINE = re.compile(r"psb_[A-Za-z0-9_-]{20,}\n")


def psbridge(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PSBRIDGE), *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single ``error:`` line a failing command prints (and nothing on stdout)."""
    assert done.returncode != 0 and done.stdout == "", (done.returncode, done.stdout)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def _fetch(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return in_fresh_loop(go)


# ------------------------------------------------------------------------------- a database of its own


@pytest.fixture
def migrated_database(service_urls: ServiceUrls, tmp_path: Path) -> Iterator[str]:
    """A scratch database that ``psbridge migrate`` itself migrated (asserted), dropped afterwards."""
    with scratch_database(service_urls.database_url, "psbridge_cli") as url:
        done = psbridge("migrate", env=clean_env(PSBRIDGE_DATABASE_URL=url), cwd=tmp_path)
        assert done.returncode == 0 and done.stdout == "", done.stderr
        assert re.fullmatch(r"applied \d+ migration\(s\) to postgresql://\S+/psbridge_cli_\w+: .+\n", done.stderr)
        yield url


def test_clients_create_prints_the_key_and_nothing_else(migrated_database: str, tmp_path: Path) -> None:
    env = clean_env(PSBRIDGE_DATABASE_URL=migrated_database)
    done = psbridge("clients", "create", "reporting", "--role", "finance", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert KEY_LINE.fullmatch(done.stdout) and done.stderr == "", (done.stdout, done.stderr)
    [row] = _fetch(migrated_database, "select name, role, key_prefix from api_client")
    assert (row["name"], row["role"], row["key_prefix"]) == ("reporting", "finance", done.stdout[:10])


def test_a_customer_psbridge_does_not_know_is_refused_in_one_line(migrated_database: str, tmp_path: Path) -> None:
    env = clean_env(PSBRIDGE_DATABASE_URL=migrated_database)
    done = psbridge("clients", "create", "portal", "--role", "customer", "--customer", "NOPE-1", env=env, cwd=tmp_path)
    line = one_error_line(done)
    assert done.returncode == 2
    assert line.startswith("error: --customer: ") and "'NOPE-1'" in line, line
    assert _fetch(migrated_database, "select 1 from api_client") == []


def test_every_refusal_gets_a_line_of_its_own(migrated_database: str, tmp_path: Path) -> None:
    env = clean_env(PSBRIDGE_DATABASE_URL=migrated_database)
    args = ("clients", "create", "x", "--role", "finance", "--customer", "ACME-001", "--system", "crm")
    done = psbridge(*args, env=env, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert [line.split(":")[1].strip() for line in lines] == ["--customer", "--system"], lines
    assert all(line.startswith("error: ") for line in lines), lines


def test_command_line_mistakes_are_one_line(tmp_path: Path) -> None:
    # Refused while reading the command line: no database is looked for.
    env = clean_env(PSBRIDGE_DATABASE_URL="postgresql://postgres@127.0.0.1:9/never_reached")
    for args, expected in (
        (("--contract", "not-a-uuid"), "'not-a-uuid' is not a valid UUID"),
        (("--system", "sap"), "'sap' is not one of 'crm', 'psa', 'erp'"),
        ((), "Missing option '--role'"),
    ):
        role = ("--role", "project_manager") if args else ()
        done = psbridge("clients", "create", "x", *role, *args, env=env, cwd=tmp_path)
        line = one_error_line(done)
        assert done.returncode == 2 and expected in line and "psbridge clients create --help" in line, line


def test_unreachable_database_is_one_line_with_the_traceback_kept_aside(tmp_path: Path) -> None:
    env = clean_env(
        PSBRIDGE_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/x", PSBRIDGE_DATA_DIR=str(tmp_path)
    )
    for args in (("migrate",), ("clients", "create", "x", "--role", "finance")):
        done = psbridge(*args, env=env, cwd=tmp_path)
        line = one_error_line(done)
        assert done.returncode == 1 and line.startswith("error: no PostgreSQL to use: "), line
        assert f"(traceback in {tmp_path / 'last-error.log'})" in line, line
        assert "Traceback" in (tmp_path / "last-error.log").read_text()


def test_help_still_works(tmp_path: Path) -> None:
    done = psbridge("--help", env=clean_env(), cwd=tmp_path)
    assert done.returncode == 0 and "clients" in done.stdout and "dev" in done.stdout, done.stderr
    dev_help = " ".join(psbridge("dev", "--help", env=clean_env(COLUMNS="200"), cwd=tmp_path).stdout.split())
    for deleted in ("sandbox-state.json", "demo-keys.json", "dropped and created empty", "PSBRIDGE_QUEUE_NAME"):
        assert deleted in dev_help, dev_help


# ------------------------------------------------------------------------------- keys bound to what psbridge knows


async def test_project_manager_key_bound_to_contracts_and_customers(
    api: httpx.AsyncClient, services: Services, keys: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    response = await register(api, keys["integration"], acme(external_id=f"X-{uuid.uuid4().hex[:8]}"))
    assert response.status_code == 201, response.text
    contract_id = response.json()["id"]
    env = clean_env(PSBRIDGE_DATABASE_URL=database_url)
    args = ("clients", "create", "pm-acme", "--role", "project_manager", "--contract", contract_id)
    done = psbridge(*args, "--customer", "ACME-001", env=env, cwd=tmp_path)
    assert done.returncode == 0 and KEY_LINE.fullmatch(done.stdout), done.stderr
    pm_key = done.stdout.strip()
    [row] = _fetch(database_url, "select role, customers, contracts from api_client where name = 'pm-acme'")
    assert (row["role"], row["customers"], [str(c) for c in row["contracts"]]) == (
        "project_manager",
        ["ACME-001"],
        [contract_id],
    )
    # The key works, and sees its contract.
    mine = await api.get(f"/process/v1/contracts/{contract_id}", headers=auth(pm_key))
    assert mine.status_code == 200, mine.text

    # A customer key for a customer psbridge now knows is accepted.
    done = psbridge(
        "clients", "create", "portal", "--role", "customer", "--customer", "ACME-001", env=env, cwd=tmp_path
    )
    assert done.returncode == 0 and KEY_LINE.fullmatch(done.stdout), done.stderr

    unknown = str(uuid.uuid4())
    done = psbridge(
        "clients", "create", "pm-2", "--role", "project_manager", "--contract", unknown, env=env, cwd=tmp_path
    )
    assert one_error_line(done) == f"error: --contract: contract {unknown} does not exist"


# ------------------------------------------------------------------------------- nothing configured at all

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def test_with_an_empty_environment_the_local_servers_and_the_psbridge_database_are_used(tmp_path: Path) -> None:
    if not (port_open("127.0.0.1", 5432) and port_open("127.0.0.1", 6379)):
        pytest.skip("no local PostgreSQL and Redis on their default ports")
    existed = _database_exists(LOCAL_SERVER, "psbridge")
    try:
        # An unknown role is refused before anything is written: the run leaves no row behind.
        done = psbridge("clients", "create", "x", "--role", "boss", env={}, cwd=tmp_path)
        assert one_error_line(done).startswith("error: --role: must be one of admin, ")
        assert done.returncode == 2
        assert _database_exists(LOCAL_SERVER, "psbridge"), "the local server's psbridge database was not used"
    finally:
        if not existed:
            _drop_if_empty("psbridge")


def _database_exists(server_url: str, name: str) -> bool:
    return bool(_fetch(server_url, "select 1 from pg_database where datname = $1", name))


def _drop_if_empty(name: str) -> None:
    """Drop the database this test made, and only if it is still empty (no table: nobody else's)."""
    base = LOCAL_SERVER.rpartition("/")[0]
    if _database_exists(LOCAL_SERVER, name) and not _fetch(
        f"{base}/{name}", "select 1 from pg_tables where schemaname = 'public'"
    ):
        sql(LOCAL_SERVER, f'drop database if exists "{name}"')


# ------------------------------------------------------------------------------- long-running commands


def test_serve_and_worker_find_local_redis_when_only_the_database_is_configured(
    migrated_database: str, tmp_path: Path
) -> None:
    if not port_open("127.0.0.1", 6379):
        pytest.skip("no local Redis on its default port")
    local = "redis://127.0.0.1:6379/0"
    api = f"http://127.0.0.1:{free_port()}"
    with (
        scratch_queue(local, "psbridge:e2e-cli") as queue,
        processes(tmp_path, clean_env(PSBRIDGE_DATABASE_URL=migrated_database, PSBRIDGE_QUEUE_NAME=queue)) as procs,
        redis.Redis.from_url(local) as local_redis,
    ):
        procs.start("api", "serve", "--port", api.rpartition(":")[2])
        procs.start("worker", "worker")
        wait_for(lambda: http_ok(f"{api}/readyz"), "the API ready", diagnostics=procs.diagnostics)
        # arq records its health in the queue's Redis as soon as it polls: the worker found the local Redis.
        wait_for(
            lambda: local_redis.exists(f"{queue}:health-check"),
            "the worker's health check",
            diagnostics=procs.diagnostics,
        )
        procs.check_alive()
