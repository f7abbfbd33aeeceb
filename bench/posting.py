"""Accepted milestones -> ERP-posted invoices: psbridge against a bare baseline measured in the same run.

Setup (not measured): a fresh database ``psbridge_bench_<hex>`` (dropped at the end), the sandbox and
``--workers`` arq workers as real processes (``python -m app.cli sandbox|worker``), a unique queue name in
Redis logical database ``--redis-db`` (the shared throttle's keys are global), the master data, and N fresh
fixed-fee contracts per repeat, each with M1 accepted and its propagation to the PSA and the ERP confirmed.
The ERP limits default to psbridge's own defaults (``PSBRIDGE_ERP_RATE_LIMIT`` / ``_MAX_CONCURRENCY``);
``--erp-rate-limit 100000/second`` lifts the rate limit to expose psbridge's own overhead.

Measured, per repeat:

* baseline: for each of the N invoices, the tax quote (``POST /tax/quotes``, at psbridge's quote
  concurrency) then the ERP upsert of an equivalent record (``PUT .../invoice/eid:<id>``, at the ERP
  concurrency limit and rate limit), sent directly with httpx: the unavoidable backend round trips.
* psbridge: ``BillingService.run_billing`` (packages the N invoices, quotes tax over HTTP, enqueues) and
  the worker processes posting through the shared ERP throttle; wall time until all N are ``posted``.

After each psbridge repeat the sandbox ERP must hold exactly the N invoices psbridge posted.
Run: ``.venv/bin/python -m bench --invoices 200 --repeat 3`` (``make bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import httpx
from limits import parse as parse_rate

from app.access import Principal
from app.bootstrap import Services, build_services
from app.canonical.contract import ContractIn
from app.dev.seed import ACME_CONTRACT, seed_erp_customers, seed_master_data
from app.dev.servers import resolve_services
from app.migrate import migrate
from app.settings import Settings
from process_apis.billing.commands import BillingRunIn
from process_apis.billing.service import QUOTE_CONCURRENCY
from process_apis.milestones.commands import AcceptanceIn

__all__ = ["BenchConfig", "main", "run_bench"]

# The bench acts as an admin: it sees every contract it drives.
BENCH = Principal(uuid.uuid4(), "bench", "admin")

ROOT = Path(__file__).resolve().parent.parent
ERP_RECORDS = "/erp/services/rest/record/v1"
ACCEPTED_AT = datetime(2026, 3, 28, 16, 0, tzinfo=UTC)
AS_OF = date(2026, 3, 31)
SELLER_COUNTRY, JURISDICTION, CURRENCY, CUSTOMER, SUBSIDIARY = "US", "US-NY", "USD", "ACME-001", "US01"
SETUP_CONCURRENCY = 8
POLL_SECONDS = 0.01
HTTP_TIMEOUT = 10.0
LIST_PAGE = 1000
SYSTEMS = ("erp", "psa", "crm", "tax", "fx")
NO_FAULTS: dict[str, dict[str, Any]] = {
    system: {"error_rate": 0.0, "drop_response_rate": 0.0, "latency_ms": 0, "down": False, "max_concurrency": None}
    | ({"closed_periods": []} if system == "erp" else {})
    for system in SYSTEMS
}
T = TypeVar("T")


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class BenchConfig:
    invoices: int = 200
    repeat: int = 3
    workers: int = 2
    erp_rate_limit: str = str(Settings.model_fields["erp_rate_limit"].default)
    erp_max_concurrency: int = int(Settings.model_fields["erp_max_concurrency"].default)
    phase_timeout: float = 120.0
    # The shared ERP throttle's Redis keys are not namespaced: a logical database of its own keeps other
    # psbridge processes on the same Redis (a concurrent test run) out of the bench's slots and rate window.
    redis_db: int | None = 15


@dataclass(frozen=True)
class RepeatResult:
    baseline_s: float
    psbridge_s: float
    billing_run_s: float
    erp_invoices: int
    calls: dict[str, int]

    @property
    def ratio(self) -> float:
        return self.psbridge_s / self.baseline_s


# ----------------------------------------------------------------------------------------- processes


class Child:
    """A ``python -m app.cli ...`` process (or ``-m module``); its output goes to a file (no pipe can fill up)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path, module: str = "app.cli") -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        with self.log.open("wb") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                env=env,
                cwd=log_dir,  # no stray .env is read
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C reaches only us; we stop the children ourselves
            )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 20) -> str:
        try:
            text = "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            text = "<no output>"
        state = "running" if self.alive() else f"exited {self.popen.returncode}"
        return f"--- {self.name} (pid {self.popen.pid}, {state}), {self.log}\n{text}"

    def terminate(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)

    def wait_or_kill(self, timeout: float = 10.0) -> None:
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)


def stop_children(children: list[Child]) -> None:
    for child in children:
        child.terminate()
    for child in children:
        child.wait_or_kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def child_env(settings: Settings) -> dict[str, str]:
    """The inherited environment minus any ``PSBRIDGE_*``, plus exactly the settings the bench chose."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PSBRIDGE_")}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    for name in (
        "env",
        "database_url",
        "redis_url",
        "queue_name",
        "crm_url",
        "psa_url",
        "erp_url",
        "tax_url",
        "fx_url",
        "erp_rate_limit",
        "erp_max_concurrency",
        "job_max_tries",
        "job_time_budget_seconds",
    ):
        env[f"PSBRIDGE_{name.upper()}"] = str(getattr(settings, name))
    return env


def with_redis_db(url: str, db: int | None) -> str:
    """``redis://host:port/<db>`` or ``unix:///path?db=<db>`` (the embedded server)."""
    if db is None:
        return url
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = {**dict(parse_qsl(parts.query)), "db": str(db)}
        return f"unix://{parts.path}?{urlencode(query)}"
    return urlunsplit(parts._replace(path=f"/{db}"))


def check_alive(children: list[Child]) -> None:
    dead = [c for c in children if not c.alive()]
    if dead:
        raise BenchError("a process exited:\n" + "\n".join(c.tail() for c in dead))


async def all_of(coros: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run concurrently; the first failure (or a cancellation) cancels the rest, and is what is raised."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
    except ExceptionGroup as failed:
        first: BaseException = failed
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    return [t.result() for t in tasks]


async def bounded(what: str, awaitable: Awaitable[T], timeout: float) -> T:
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        raise BenchError(f"timed out after {timeout:.0f}s: {what}") from None


async def wait_for(
    what: str, probe: Callable[[], Awaitable[T | None]], children: list[Child], timeout: float, interval: float
) -> T:
    """Poll ``probe`` until it returns something; fail fast if a child dies, or after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        check_alive(children)
        result = await probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


# ------------------------------------------------------------------------------------------- sandbox


async def reset_sandbox(http: httpx.AsyncClient, sandbox: str) -> None:
    """Back to the seeds (which restores default faults), then no faults at all, then the ERP customers."""
    (await http.post(f"{sandbox}/__sandbox/reset")).raise_for_status()
    (await http.post(f"{sandbox}/__sandbox/faults", json=NO_FAULTS)).raise_for_status()
    await seed_erp_customers(http, f"{sandbox}/erp")


async def erp_invoices(http: httpx.AsyncClient, sandbox: str) -> tuple[int, dict[str, dict[str, Any]]]:
    """``totalResults`` and every invoice record by external id."""
    records: dict[str, dict[str, Any]] = {}
    offset, total = 0, 0
    while True:
        response = await http.get(f"{sandbox}{ERP_RECORDS}/invoice", params={"limit": LIST_PAGE, "offset": offset})
        response.raise_for_status()
        page = response.json()
        total = int(page["totalResults"])
        records.update({item["externalId"]: item for item in page["items"]})
        offset += len(page["items"])
        if not page["hasMore"] or not page["items"]:
            return total, records


async def log_cursor(http: httpx.AsyncClient, sandbox: str, after: int = 0) -> tuple[int, Counter[str]]:
    """The sandbox request log after ``after``: the last seq and the requests per system and method."""
    counts: Counter[str] = Counter()
    while True:
        response = await http.get(f"{sandbox}/__sandbox/log", params={"after": after, "limit": LIST_PAGE})
        response.raise_for_status()
        page = response.json()
        for item in page["items"]:
            counts[f"{item['system']} {item['method']}"] += 1
            after = max(after, int(item["seq"]))
        if page["next_cursor"] is None:
            return after, counts


# ------------------------------------------------------------------------------------------ baseline


class RatePacer:
    """The same sliding-window rate limit the shared throttle applies (N calls per window), in-process."""

    def __init__(self, rate: str) -> None:
        item = parse_rate(rate)
        self.amount = int(item.amount)
        self.window = float(item.get_expiry())
        self.starts: deque[float] = deque()

    async def acquire(self) -> None:
        while True:
            now = time.monotonic()
            while self.starts and self.starts[0] <= now - self.window:
                self.starts.popleft()
            if len(self.starts) < self.amount:
                self.starts.append(now)
                return
            await asyncio.sleep(self.starts[0] + self.window - now)


def amount_of(index: int) -> Decimal:
    return Decimal(1000 + index).quantize(Decimal("0.01"))


async def run_baseline(http: httpx.AsyncClient, sandbox: str, cfg: BenchConfig, prefix: str) -> float:
    """Per invoice: one tax quote, then one ERP upsert by external id. No database, no queue, no logic."""
    tax_gate = asyncio.Semaphore(QUOTE_CONCURRENCY)
    erp_gate = asyncio.Semaphore(cfg.erp_max_concurrency)
    pacer = RatePacer(cfg.erp_rate_limit)

    async def one(index: int) -> None:
        external_id = f"{prefix}-{index:06d}"
        net = amount_of(index)
        async with tax_gate:
            response = await http.post(
                f"{sandbox}/tax/quotes",
                json={
                    "seller_country": SELLER_COUNTRY,
                    "jurisdiction": JURISDICTION,
                    "customer_tax_id": None,
                    "currency": CURRENCY,
                    "lines": [{"key": "1", "net": str(net)}],
                },
            )
        response.raise_for_status()
        line = response.json()["lines"][0]
        record = {
            "entity": {"externalId": CUSTOMER},
            "subsidiary": SUBSIDIARY,
            "currency": CURRENCY,
            "tranDate": AS_OF.isoformat(),
            "memo": f"SOW-BENCH — baseline invoice {external_id}",
            "item": {
                "items": [
                    {
                        "description": "Delivery",
                        "quantity": "1",
                        "rate": str(net),
                        "amount": str(net),
                        "taxRate": line["rate"],
                        "tax": line["tax"],
                    }
                ]
            },
        }
        async with erp_gate:
            await pacer.acquire()
            response = await http.put(f"{sandbox}{ERP_RECORDS}/invoice/eid:{external_id}", json=record)
        if response.status_code != 204:
            raise BenchError(f"baseline ERP upsert answered {response.status_code}: {response.text[:300]}")

    started = time.perf_counter()
    await all_of(one(i) for i in range(cfg.invoices))
    return time.perf_counter() - started


# ------------------------------------------------------------------------------------------ psbridge


def contract_in(tag: str, index: int, amount: Decimal) -> ContractIn:
    body = copy.deepcopy(ACME_CONTRACT)
    total = str(amount)
    body.update(
        external_id=f"BENCH-{tag}-{index:06d}",
        number=f"SOW-BENCH-{tag}-{index:06d}",
        total_value=total,
        milestones=[{"key": "M1", "name": "Delivery", "amount": total, "due_date": "2026-03-31", "depends_on": []}],
        document=None,
    )
    return ContractIn.model_validate(body)


async def setup_contracts(
    services: Services, cfg: BenchConfig, tag: str, children: list[Child]
) -> list[list[uuid.UUID]]:
    """N active contracts per repeat with M1 accepted, propagation confirmed and the queue drained (not measured).

    All repeats' contracts are made up front, before any sandbox reset: a reset restarts the PSA's project
    numbering, and projects created after one would reuse ids psbridge already holds for earlier contracts.
    """
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)
    timeout = cfg.phase_timeout * cfg.repeat
    acceptance = AcceptanceIn(accepted_at=ACCEPTED_AT, accepted_by="bench")

    async def one(index: int) -> uuid.UUID:
        async with gate:
            command = contract_in(tag, index, amount_of(index % cfg.invoices))
            registered = await services.contracts.register_contract(command, BENCH)
            if registered.status != "active":
                raise BenchError(f"contract {index} is {registered.status}: {registered.exceptions}")
            await services.milestones.accept_milestone(registered.id, "M1", acceptance, BENCH)
            return registered.id

    contract_ids = await bounded(
        "registering contracts", all_of(one(i) for i in range(cfg.invoices * cfg.repeat)), timeout
    )

    async def propagated() -> bool | None:
        async with services.db.connection() as conn:
            row = await conn.fetchrow(
                """select count(*) filter (where status = 'confirmed') as confirmed,
                          count(*) filter (where status = 'failed') as failed
                   from propagation where contract_id = any($1::uuid[])""",
                contract_ids,
            )
        if row["failed"]:
            raise BenchError(f"{row['failed']} propagation(s) failed")
        return True if row["confirmed"] == 2 * len(contract_ids) else None

    await wait_for("contract propagation", propagated, children, timeout, 0.1)
    await wait_queue_idle(services, children, timeout)
    return [contract_ids[r * cfg.invoices : (r + 1) * cfg.invoices] for r in range(cfg.repeat)]


async def wait_queue_idle(services: Services, children: list[Child], timeout: float) -> None:
    """arq keeps a job in the queue's sorted set until it finishes: empty means nothing queued or running."""
    pool = services.queue.pool  # type: ignore[attr-defined]
    queue_name = services.settings.queue_name

    async def idle() -> bool | None:
        return True if await pool.zcard(queue_name) == 0 else None

    await wait_for("the job queue to drain", idle, children, timeout, 0.05)


async def drop_queue(services: Services) -> None:
    """The queue and the definitions of jobs left in it (after a failure); finished jobs' keys expire."""
    pool = services.queue.pool  # type: ignore[attr-defined]
    queue_name = services.settings.queue_name
    job_ids = [j.decode() for j in await pool.zrange(queue_name, 0, -1)]
    keys = [f"arq:{kind}:{j}" for j in job_ids for kind in ("job", "retry", "in-progress")]
    await pool.delete(queue_name, f"{queue_name}:health-check", *keys)


async def run_psbridge(
    services: Services, cfg: BenchConfig, contract_ids: list[uuid.UUID], children: list[Child]
) -> tuple[float, float, list[str]]:
    """Wall time from ``run_billing`` to every invoice ``posted`` (and the billing run's own share)."""
    started = time.perf_counter()
    run = await bounded(
        "the billing run",
        services.billing.run_billing(BillingRunIn(as_of=AS_OF, contract_ids=contract_ids), "bench"),
        cfg.phase_timeout,
    )
    billed = time.perf_counter() - started
    invoice_ids = [str(i) for i in run.invoice_ids]
    if len(invoice_ids) != cfg.invoices:
        raise BenchError(f"the billing run packaged {len(invoice_ids)} invoices, expected {cfg.invoices}")
    run_id = run.id

    async def all_posted() -> bool | None:
        async with services.db.connection() as conn:
            row = await conn.fetchrow(
                """select count(*) filter (where status = 'posted') as posted,
                          count(*) filter (where status in ('blocked', 'failed')) as stuck
                   from invoice where billing_run_id = $1""",
                run_id,
            )
        if row["stuck"]:
            raise BenchError(f"{row['stuck']} invoice(s) blocked or failed")
        return True if row["posted"] == cfg.invoices else None

    await wait_for("every invoice to be posted", all_posted, children, cfg.phase_timeout, POLL_SECONDS)
    return time.perf_counter() - started, billed, invoice_ids


async def verify_erp(
    services: Services, http: httpx.AsyncClient, sandbox: str, invoice_ids: list[str], expected: int
) -> int:
    """The ERP holds exactly psbridge's invoices, each once, with the totals psbridge recorded."""
    total, records = await erp_invoices(http, sandbox)
    if total != expected or set(records) != set(invoice_ids):
        raise BenchError(f"the ERP holds {total} invoices ({len(set(records) - set(invoice_ids))} unknown), "
                         f"expected exactly the {expected} psbridge posted")  # fmt: skip
    async with services.db.connection() as conn:
        rows = await conn.fetch(
            "select id::text, erp_ref, total from invoice where id = any($1::uuid[])",
            [uuid.UUID(i) for i in invoice_ids],
        )
    wrong = [
        r["id"]
        for r in rows
        if records[r["id"]]["id"] != r["erp_ref"] or Decimal(records[r["id"]]["total"]) != r["total"]
    ]
    if wrong:
        raise BenchError(f"{len(wrong)} ERP invoice(s) differ from psbridge's record, e.g. {wrong[0]}")
    return total


# ------------------------------------------------------------------------------------------ the run


async def one_repeat(
    services: Services,
    http: httpx.AsyncClient,
    sandbox: str,
    cfg: BenchConfig,
    tag: str,
    contract_ids: list[uuid.UUID],
    children: list[Child],
) -> RepeatResult:
    await reset_sandbox(http, sandbox)
    baseline = await bounded("the baseline", run_baseline(http, sandbox, cfg, f"BASE-{tag}"), cfg.phase_timeout)
    total, _ = await erp_invoices(http, sandbox)
    if total != cfg.invoices:
        raise BenchError(f"the baseline left {total} ERP invoices, expected {cfg.invoices}")

    await reset_sandbox(http, sandbox)
    cursor, _ = await log_cursor(http, sandbox)
    elapsed, billed, invoice_ids = await run_psbridge(services, cfg, contract_ids, children)
    await wait_queue_idle(services, children, cfg.phase_timeout)  # the billed notices, before the next reset
    _, calls = await log_cursor(http, sandbox, cursor)
    checked = await verify_erp(services, http, sandbox, invoice_ids, cfg.invoices)
    return RepeatResult(baseline, elapsed, billed, checked, dict(sorted(calls.items())))


@dataclass(frozen=True)
class Scratch:
    """A bench run's own database (migrated) and log directory on the resolved servers."""

    urls: Any  # app.dev.servers.ServiceUrls
    tag: str
    database_url: str
    log_dir: Path


@contextlib.asynccontextmanager
async def scratch_bench(log_prefix: str) -> AsyncIterator[Scratch]:
    """Resolve PostgreSQL and Redis (embedded when none is configured), create and migrate a database
    for the run, and a log directory. Afterwards the database is dropped; the logs are removed when
    the run succeeded and kept (and named) when it failed."""
    urls, handle = resolve_services(
        ROOT / ".psbridge" / "bench-services",
        os.environ.get("PSBRIDGE_DATABASE_URL"),
        os.environ.get("PSBRIDGE_REDIS_URL"),
        "postgres",
    )
    with handle:
        tag = uuid.uuid4().hex[:12]
        db_name = f"psbridge_bench_{tag}"
        base, _, _ = urls.database_url.rpartition("/")
        log_dir = Path(tempfile.mkdtemp(prefix=log_prefix))
        created = False
        try:
            admin = await asyncpg.connect(urls.database_url, timeout=10)
            try:
                await admin.execute(f'create database "{db_name}"')
                created = True
            finally:
                await admin.close()
            database_url = f"{base}/{db_name}"
            await migrate(database_url)
            yield Scratch(urls, tag, database_url, log_dir)
        except BaseException:
            _info(f"process logs kept in {log_dir}")
            raise
        else:
            shutil.rmtree(log_dir, ignore_errors=True)
        finally:
            if created:
                admin = await asyncpg.connect(urls.database_url, timeout=10)
                try:
                    await admin.execute(f'drop database if exists "{db_name}" with (force)')
                finally:
                    await admin.close()


async def run_bench(cfg: BenchConfig) -> list[RepeatResult]:
    async with scratch_bench("psbridge-bench-") as scratch:
        urls, tag, database_url, log_dir = scratch.urls, scratch.tag, scratch.database_url, scratch.log_dir
        children: list[Child] = []  # running
        started: list[Child] = []  # for diagnostics
        try:
            port = free_port()
            sandbox = f"http://127.0.0.1:{port}"
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                env="test",
                database_url=database_url,
                redis_url=with_redis_db(urls.redis_url, cfg.redis_db),
                queue_name=f"psbridge:bench:{tag}",
                crm_url=f"{sandbox}/crm",
                psa_url=f"{sandbox}/psa",
                erp_url=f"{sandbox}/erp",
                tax_url=f"{sandbox}/tax",
                fx_url=f"{sandbox}/fx",
                erp_rate_limit=cfg.erp_rate_limit,
                erp_max_concurrency=cfg.erp_max_concurrency,
            )
            env = child_env(settings)
            children.append(Child("sandbox", ["sandbox", "--port", str(port)], env, log_dir))
            started.extend(children)
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:

                async def sandbox_up() -> bool | None:
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(f"{sandbox}/healthz", timeout=1)).status_code == 200:
                            return True
                    return None

                await wait_for("the sandbox", sandbox_up, children, 30, 0.1)
                workers = [Child(f"worker-{i + 1}", ["worker"], env, log_dir) for i in range(cfg.workers)]
                children.extend(workers)
                started.extend(workers)
                _info(
                    f"psbridge bench: {cfg.invoices} invoices x {cfg.repeat} repeats; PostgreSQL {urls.database_source}"
                    f" db {database_url.rpartition('/')[2]}, Redis {urls.redis_source} {settings.redis_url},"
                    f" queue {settings.queue_name}; sandbox :{port};"
                    f" {cfg.workers} worker processes; ERP limit {cfg.erp_rate_limit}, {cfg.erp_max_concurrency} in"
                    f" flight; quote concurrency {QUOTE_CONCURRENCY}; logs {log_dir}"
                )
                results: list[RepeatResult] = []
                async with build_services(settings) as services:
                    try:
                        await seed_master_data(services.db)
                        await reset_sandbox(http, sandbox)
                        setup_started = time.perf_counter()
                        batches = await setup_contracts(services, cfg, tag, children)
                        _info(f"  setup: {cfg.invoices * cfg.repeat} contracts registered, accepted, propagated"
                              f" in {time.perf_counter() - setup_started:.1f}s (not measured)")  # fmt: skip
                        for r, contract_ids in enumerate(batches):
                            result = await one_repeat(
                                services, http, sandbox, cfg, f"{tag}-{r + 1}", contract_ids, children
                            )
                            results.append(result)
                            _info(progress(r + 1, result))
                    finally:
                        # Workers first, so nothing re-creates the queue keys deleted next.
                        stop_children(workers)
                        with contextlib.suppress(Exception):
                            await drop_queue(services)
            return results
        except BenchError:
            for child in started:
                _info(child.tail())
            raise
        finally:
            stop_children(children)


# ------------------------------------------------------------------------------------------- report


def report(cfg: BenchConfig, results: list[RepeatResult]) -> str:
    """Per repeat and the median of each column (the ratio's median is of the per-repeat ratios)."""
    n = cfg.invoices
    header = f"{'repeat':>6}  {'baseline s':>10}  {'psbridge s':>10}  {'ratio':>7}  {'base inv/s':>10}  "
    header += f"{'psb inv/s':>10}  {'billing run s':>13}  {'ERP check':>12}"
    rows = [header, "-" * len(header)]

    def row(label: str, base: float, psb: float, ratio: float, billed: float, check: str) -> str:
        return (
            f"{label:>6}  {base:>10.3f}  {psb:>10.3f}  {ratio:>6.1f}x  {n / base:>10.1f}  "
            f"{n / psb:>10.1f}  {billed:>13.3f}  {check:>12}"
        )

    for i, r in enumerate(results, 1):
        rows.append(row(str(i), r.baseline_s, r.psbridge_s, r.ratio, r.billing_run_s, f"{r.erp_invoices}/{n} ok"))
    med = statistics.median
    rows.append(
        row(
            "median",
            med(r.baseline_s for r in results),
            med(r.psbridge_s for r in results),
            med(r.ratio for r in results),
            med(r.billing_run_s for r in results),
            f"{sum(r.erp_invoices == n for r in results)}/{len(results)} ok",
        )
    )
    rows.append("psbridge backend calls, last repeat (sandbox log): "
                + ", ".join(f"{k} {v}" for k, v in results[-1].calls.items()))  # fmt: skip
    return "\n".join(rows)


def progress(repeat: int, r: RepeatResult) -> str:
    return (
        f"  repeat {repeat}: baseline {r.baseline_s:.3f}s  psbridge {r.psbridge_s:.3f}s"
        f" (billing run {r.billing_run_s:.3f}s)  ratio {r.ratio:.1f}x  ERP holds {r.erp_invoices}"
    )


def _info(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> BenchConfig:
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=defaults.invoices, help="invoices per repeat (N)")
    parser.add_argument("--repeat", type=int, default=defaults.repeat, help="repeats (R)")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="worker processes")
    parser.add_argument(
        "--erp-rate-limit",
        default=defaults.erp_rate_limit,
        help="shared ERP rate limit, applied to psbridge and the baseline alike (e.g. 100000/second: no limit)",
    )
    parser.add_argument("--erp-max-concurrency", type=int, default=defaults.erp_max_concurrency)
    parser.add_argument(
        "--redis-db", type=int, default=defaults.redis_db, help="Redis logical database for the bench (-1: as resolved)"
    )
    parser.add_argument("--timeout", type=float, default=defaults.phase_timeout, help="seconds per phase")
    args = parser.parse_args(argv)
    if args.invoices < 1 or args.repeat < 1 or args.workers < 1 or args.erp_max_concurrency < 1:
        parser.error("--invoices, --repeat, --workers and --erp-max-concurrency must be >= 1")
    return BenchConfig(
        invoices=args.invoices,
        repeat=args.repeat,
        workers=args.workers,
        erp_rate_limit=args.erp_rate_limit,
        erp_max_concurrency=args.erp_max_concurrency,
        phase_timeout=args.timeout,
        redis_db=None if args.redis_db < 0 else args.redis_db,
    )


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)

    async def _main() -> list[RepeatResult]:
        # SIGTERM cancels the run like Ctrl-C does, so the finally blocks stop processes and drop the database.
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await run_bench(cfg)

    try:
        results = asyncio.run(_main())
    except BenchError as exc:
        _info(f"bench failed: {exc}")
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        _info("bench interrupted")
        return 130
    print(report(cfg, results), flush=True)
    return 0
