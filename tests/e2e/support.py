"""Helpers for end-to-end tests that start real ``psbridge`` processes (``python -m app.cli ...``)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import httpx

from app.dev.reset import clear_queue

REPO_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    """The inherited environment without any ``PSBRIDGE_*`` setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSBRIDGE_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


BACKENDS = ("crm", "psa", "erp", "tax", "fx")


def stack_env(database_url: str, redis_url: str, sandbox: str, **extra: str) -> dict[str, str]:
    """The environment of the psbridge processes of one test stack: its database, a queue of its own,
    and every backend at ``sandbox``."""
    return clean_env(
        PSBRIDGE_DATABASE_URL=database_url,
        PSBRIDGE_REDIS_URL=redis_url,
        PSBRIDGE_QUEUE_NAME=f"psbridge:e2e:{uuid.uuid4().hex[:12]}",
        **{f"PSBRIDGE_{s.upper()}_URL": f"{sandbox}/{s}" for s in BACKENDS},
        **extra,
    )


def seed_master_data(http: httpx.Client, api: str, sandbox: str, admin_key: str) -> None:
    """The demo's legal entities and ERP customers, through the doors production uses: psbridge's API
    and the ERP's."""
    from app.dev.seed import ERP_CUSTOMERS, LEGAL_ENTITIES

    for code, entity in LEGAL_ENTITIES.items():
        r = http.put(
            f"{api}/process/v1/legal-entities/{code}", json=entity.model_dump(mode="json"), headers=bearer(admin_key)
        )
        assert r.status_code in (200, 201), f"{r.status_code} {r.text}"
    for external_id, (name, subsidiary) in ERP_CUSTOMERS.items():
        r = http.put(
            f"{sandbox}/erp/services/rest/record/v1/customer/eid:{external_id}",
            json={"companyName": name, "subsidiary": subsidiary},
        )
        assert r.status_code in (200, 201, 204), r.text


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli", *args]


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no output>"


class Proc:
    """A child process whose stdout and stderr go to files (no pipe can fill up and block it)."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], log_dir: Path, *, new_session: bool = False
    ) -> None:
        self.name = name
        self.stdout_path = log_dir / f"{name}.out"
        self.stderr_path = log_dir / f"{name}.err"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.popen = subprocess.Popen(
                args, env=env, cwd=log_dir, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=new_session,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def diagnostics(self, lines: int = 40) -> str:
        state = "running" if self.popen.poll() is None else f"exited {self.popen.returncode}"
        out = [f"--- {self.name} (pid {self.pid}, {state})"]
        for label, path in (("stderr", self.stderr_path), ("stdout", self.stdout_path)):
            text = tail(path, lines)
            if text.strip():
                out.append(f"  {label}:\n{text}")
        return "\n".join(out)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int | None:
        """Send ``sig``, wait up to ``timeout`` s, then SIGKILL. The exit code, or None if it had to be killed."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
            return None


class Procs:
    """The processes a test started; ``diagnostics()`` goes into assertion messages."""

    def __init__(self, log_dir: Path, env: dict[str, str]) -> None:
        self.log_dir = log_dir
        self.env = env
        self.procs: list[Proc] = []

    def start(self, name: str, *args: str) -> Proc:
        proc = Proc(name, cli(*args), self.env, self.log_dir)
        self.procs.append(proc)
        return proc

    def run(self, name: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            cli(*args), env=self.env, cwd=self.log_dir, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        assert done.returncode == 0, f"{name} exited {done.returncode}:\n{done.stderr[-3000:]}"
        return done

    def diagnostics(self) -> str:
        return "\n".join(p.diagnostics() for p in self.procs)

    def check_alive(self) -> None:
        dead = [p for p in self.procs if p.popen.poll() is not None]
        assert not dead, f"process(es) exited early: {[p.name for p in dead]}\n{self.diagnostics()}"

    def stop_all(self) -> None:
        for p in self.procs:  # SIGTERM all first so they shut down in parallel
            if p.popen.poll() is None:
                p.popen.send_signal(signal.SIGTERM)
        for p in self.procs:
            p.stop()


@contextmanager
def processes(log_dir: Path, env: dict[str, str]) -> Iterator[Procs]:
    """Start processes through the yielded ``Procs``; all are stopped on the way out, and a failing assertion
    gets every process's output tail appended."""
    procs = Procs(log_dir, env)
    try:
        yield procs
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{procs.diagnostics()}") from None
    finally:
        procs.stop_all()


def wait_for(
    check: Callable[[], T | None],
    what: str,
    timeout: float = 30,
    interval: float = 0.2,
    diagnostics: Callable[[], str] | None = None,
) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``diagnostics()`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = check()
        except (httpx.HTTPError, OSError, ValueError, KeyError) as exc:
            result, last = None, exc
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = diagnostics() if diagnostics is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})\n{detail}")
        time.sleep(interval)


def http_ok(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code == 200


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@contextmanager
def busy_machine() -> Iterator[int]:
    """One CPU-burning process per core for the life of the block (yields how many), killed on the way out.

    Races between processes (who sees a signal, who exits first) show on a loaded machine, not an idle one.
    """
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        yield len(burners)
    finally:
        for burner in burners:
            burner.kill()
        for burner in burners:
            burner.wait(10)


# --------------------------------------------------------------------------------- process-tree checks


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may contain spaces; the rest follows the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes whose session id is ``sid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is not None and fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def pid_alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


# ------------------------------------------------------------------------------------------- databases


def in_fresh_loop(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on a helper thread's own event loop (safe whether or not a loop runs here)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _on_server(server_url: str, name: str) -> str:
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


def sql(server_url: str, statement: str) -> None:
    async def _go() -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    in_fresh_loop(_go)


@contextmanager
def scratch_database(server_url: str, prefix: str, *, create: bool = True) -> Iterator[str]:
    """A uniquely named database on the server of ``server_url`` (created unless ``create=False``, when the
    code under test is expected to create it); always dropped afterwards. Yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    if create:
        sql(server_url, f'create database "{name}"')
    try:
        yield _on_server(server_url, name)
    finally:
        sql(server_url, f'drop database if exists "{name}" with (force)')


@contextmanager
def scratch_queue(redis_url: str, prefix: str) -> Iterator[str]:
    """A uniquely named arq queue; its keys (the worker's next cron run among them) are deleted afterwards."""
    name = f"{prefix}:{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        clear_queue(redis_url, name)


def redis_db(url: str, db: int) -> str:
    """The same Redis server, logical database ``db`` (``redis://host:port/<db>``, ``unix:///path?db=<db>``)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}?{urlencode({**dict(parse_qsl(parts.query)), 'db': str(db)})}"
    return urlunsplit(parts._replace(path=f"/{db}"))


KEY_LINE = re.compile(r"psb_[A-Za-z0-9_-]{20,}\n")


def create_key(procs: Procs, name: str, role: str, *system: str) -> str:
    """An API key minted by the CLI (`psbridge clients create`), which prints exactly the key."""
    args = ["clients", "create", name, "--role", role, *(("--system", *system) if system else ())]
    out = procs.run(f"clients create {name}", *args).stdout
    assert KEY_LINE.fullmatch(out), f"stdout must be exactly the key and a newline, got {out!r}"
    return out[:-1]


@dataclass(frozen=True)
class TwoApis:
    """A running stack: the sandbox, two `psbridge serve`, two `psbridge worker`, keys minted by the CLI."""

    sandbox: str
    apis: tuple[str, str]
    keys: dict[str, str]
    procs: Procs
    http: httpx.Client


@contextmanager
def two_apis(
    log_dir: Path, database_server: str, redis_url: str, name: str, timeout: float = 30, **env: str
) -> Iterator[TwoApis]:
    """The stack outside tests run against, on a scratch database and queue of its own, all ready and
    the master data seeded; every process is stopped and everything dropped afterwards."""
    sbx_port, api_ports = free_port(), (free_port(), free_port())
    sbx = f"http://127.0.0.1:{sbx_port}"
    apis = (f"http://127.0.0.1:{api_ports[0]}", f"http://127.0.0.1:{api_ports[1]}")
    with (
        scratch_database(database_server, f"psbridge_e2e_{name}") as database_url,
        scratch_queue(redis_url, f"psbridge:e2e-{name}") as queue,
    ):
        environment = {**stack_env(database_url, redis_url, sbx), "PSBRIDGE_QUEUE_NAME": queue, **env}
        with processes(log_dir, environment) as procs, httpx.Client(timeout=timeout) as http:
            procs.start("sandbox", "sandbox", "--port", str(sbx_port))
            procs.run("migrate", "migrate", timeout=120)
            keys = {
                "admin": create_key(procs, "e2e-admin", "admin"),
                "crm": create_key(procs, "e2e-salesforce", "integration", "crm"),
                "psa": create_key(procs, "e2e-kantata", "integration", "psa"),
                "finance": create_key(procs, "e2e-finance", "finance"),
            }
            for n, port in enumerate(api_ports, start=1):
                procs.start(f"api{n}", "serve", "--port", str(port))
            procs.start("worker1", "worker")
            procs.start("worker2", "worker")
            for url in (f"{sbx}/healthz", *(f"{api}/readyz" for api in apis)):
                wait_for(partial(http_ok, url), url, timeout=90, diagnostics=procs.diagnostics)
            procs.check_alive()
            seed_master_data(http, apis[1], sbx, keys["admin"])
            yield TwoApis(sbx, apis, keys, procs, http)
