"""Time entries in: ``POST /process/v1/time-entries`` against a bare baseline measured in the same run.

Setup (not measured): a fresh database ``psbridge_bench_<hex>`` (dropped at the end); the sandbox and one
``psbridge serve`` (``python -m app.cli serve``: one uvicorn process) as real processes, a unique queue name
in Redis logical database ``--redis-db``; an admin and an integration key made with psbridge's own CLI
(``psbridge clients create``); legal entity US01 and ``--contracts`` time-and-materials contracts registered
through the API (Acme, whose ERP customer the sandbox knows), each with a rate card for the roles the entries
use, and every tenth with a ``time_cap`` that the first measured psbridge phase crosses halfway through.
Then the baseline (``bench.ingestion_baseline``: a minimal Starlette app, one uvicorn process, that
pydantic-validates the batch and writes it with one ``unnest`` insert ... on conflict do nothing) starts.

Measured, per repeat and mode (``batch``: ``--batch-size`` entries a request; ``single``: one entry a
request), first the baseline, then the storage floor (the baseline process's ``/floor/time-entries``: the
rows psbridge must keep per accepted entry, in psbridge's own tables, with no policy; on the uncapped
contracts, so it spends no cap), then psbridge, each with the same ``--entries`` entries spread over the
contracts, sent by ``--clients`` concurrent clients (one ``httpx.AsyncClient`` each, one connection each,
bodies serialised before the clock starts) with an ``Idempotency-Key`` on every request. psbridge gets the
full policy: the integration key's bearer authentication, its rate limit (psbridge's default unless the
run would cross it: then ``PSBRIDGE_DEFAULT_RATE_LIMIT`` is raised for the run, and the output says so),
idempotency and the rules. Every answer is checked (200, one result per entry, each ``accepted`` or
``held``). Reported: entries/s, request latency p50/p99 (client side), the server process's peak RSS during
the phase (``VmHWM``, reset before each phase through ``/proc/<pid>/clear_refs``) and its CPU time.

Targets: batch ratio >= 0.5; single ratio >= 0.3 and single p99 < 50 ms (ratio = psbridge / baseline
entries/s). The floor is reported beside them: its ratio to the baseline is the most any implementation of
this data model can reach here, and psbridge's ratio to the floor is what its policy costs.
Run: ``.venv/bin/python -m bench.ingestion [--entries N] [--repeat R] [--clients 16]``
(``make bench`` runs it after the posting bench; ``python -m bench ingestion ...`` alone).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import importlib.util
import itertools
import math
import os
import resource
import signal
import ssl
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from limits import parse as parse_rate

from app.dev.seed import ACME_CONTRACT, LEGAL_ENTITIES
from app.settings import Settings
from bench.ingestion_baseline import TABLE_DDL
from bench.posting import (
    BenchError,
    Child,
    all_of,
    bounded,
    check_alive,
    child_env,
    free_port,
    reset_sandbox,
    scratch_bench,
    stop_children,
    wait_for,
    with_redis_db,
)

__all__ = ["BenchConfig", "main", "run_bench"]

ROOT = Path(__file__).resolve().parent.parent
ENDPOINT = "/process/v1/time-entries"
SOURCE = "kantata"
MODES = ("batch", "single")
TARGETS = {"batch": 0.5, "single": 0.3}
SINGLE_P99_TARGET_MS = 50.0
# Rates of the rate card every contract carries; entries alternate between the roles.
RATES = {"consultant": Decimal("200.00"), "architect": Decimal("300.00")}
ROLES = tuple(RATES)
HOURS = ("7.5", "8", "6.25", "4", "2.5", "1.75")
TERM_START, TERM_END = date(2026, 1, 5), date(2026, 12, 18)
FIRST_WORK_DATE = date(2026, 1, 12)
WORK_DAYS = 300  # work dates cycle over 2026-01-12 .. 2026-11-07, inside every contract's term
RESOURCES = 400
CAPPED_EVERY = 10  # contracts 0, 10, 20... carry a time cap
SETUP_CONCURRENCY = 8
HTTP_TIMEOUT = 120.0  # a batch of 1,000 behind 15 others may wait its turn for a while
CLK_TCK = os.sysconf("SC_CLK_TCK")
QUIET_MACHINE = 0.15  # busier than this before the run starts: warn that the figures share the machine


@dataclass(frozen=True)
class BenchConfig:
    # Entries per repeat in each mode (``--entries N`` sets both): enough batches for every client to post
    # several, enough single requests for a stable p99, and the whole bench within about three minutes.
    batch_entries: int = 32_000
    single_entries: int = 2_000
    repeat: int = 3
    clients: int = 16
    batch_size: int = 1000
    contracts: int = 100
    modes: tuple[str, ...] = MODES
    # None: psbridge's default (Settings.default_rate_limit), raised for the run only if the run would cross it.
    rate_limit: str | None = None
    phase_timeout: float = 300.0
    redis_db: int | None = 15
    baseline_only: bool = False
    analyze: bool = True  # when PostgreSQL's autovacuum is off: ANALYZE before every phase (see ``analyzer``)
    # The clients' event loop: uvloop (what uvicorn[standard] brings) keeps the load generator's own CPU down.
    loop: str = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"

    def per_request(self, mode: str) -> int:
        return self.batch_size if mode == "batch" else 1

    def entries(self, mode: str) -> int:
        return self.batch_entries if mode == "batch" else self.single_entries

    def requests(self, mode: str) -> int:
        return math.ceil(self.entries(mode) / self.per_request(mode))

    @property
    def warmup_entries(self) -> dict[str, int]:
        return {"batch": 2 * self.batch_size, "single": 8 * self.clients}


@dataclass(frozen=True)
class Phase:
    target: str  # "baseline" | "psbridge"
    mode: str
    repeat: int
    entries: int
    requests: int
    seconds: float
    latencies: tuple[float, ...]
    peak_rss_kib: int | None
    rss_since_start: bool  # the peak could not be reset: it is the process's peak since it started
    server_cpu_s: float
    bench_cpu_s: float
    machine_busy: float  # share of all cores busy during the phase
    statuses: dict[str, int] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.entries / self.seconds


# ------------------------------------------------------------------------------------------ process stats


def _status_kib(pid: int, name: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def reset_peak_rss(pid: int) -> bool:
    """Reset the process's ``VmHWM`` to its current RSS (Linux 4.0+, the process's owner): True if done."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def process_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError):
        return 0, 0
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


async def machine_busy_now(seconds: float = 1.0) -> float:
    """The share of all cores busy over the next ``seconds`` (before the bench starts anything)."""
    busy0, total0 = machine_ticks()
    await asyncio.sleep(seconds)
    busy1, total1 = machine_ticks()
    return (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports the OS has free now (as posting's ``free_port``: never a developer's 8000/8100)."""
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


# ------------------------------------------------------------------------------------------------ data


def contract_body(tag: str, index: int, time_cap: Decimal | None) -> dict[str, Any]:
    body = copy.deepcopy(ACME_CONTRACT)
    body.update(
        source="bench",
        external_id=f"BENCH-TM-{tag}-{index:04d}",
        number=f"SOW-BENCH-TM-{tag}-{index:04d}",
        billing_model="time_and_materials",
        total_value=None,
        start_date=TERM_START.isoformat(),
        end_date=TERM_END.isoformat(),
        rate_card=[
            {"role": role, "rate": str(rate), "effective_from": TERM_START.isoformat()} for role, rate in RATES.items()
        ],
        time_cap=None if time_cap is None else str(time_cap),
        reimbursable_expenses=[],
        milestones=[],
        document=None,
    )
    return body


def entry_shape(i: int, contracts: int) -> tuple[int, str, str, date]:
    """Entry ``i`` of a phase: (contract index, role, hours, work date): round-robin over the contracts."""
    contract, lap = i % contracts, i // contracts
    return contract, ROLES[lap % len(ROLES)], HOURS[i % len(HOURS)], FIRST_WORK_DATE + timedelta(days=lap % WORK_DAYS)


def entry(i: int, prefix: str, contract_ids: Sequence[str]) -> dict[str, Any]:
    contract, role, hours, work_date = entry_shape(i, len(contract_ids))
    who = i % RESOURCES
    return {
        "external_id": f"{prefix}-{i:07d}",
        "contract_id": contract_ids[contract],
        "resource": {"external_id": f"R-{who:04d}", "name": f"Bench Person {who}", "role": role, "cost_rate": "120.00"},
        "work_date": work_date.isoformat(),
        "hours": hours,
        "description": "Implementation work",
        "approved_at": f"{(work_date + timedelta(days=1)).isoformat()}T09:00:00Z",
    }


def time_caps(cfg: BenchConfig) -> dict[int, Decimal]:
    """Every tenth contract's cap: half the value it receives in the first measured psbridge phase."""
    value: dict[int, Decimal] = {}
    for i in range(cfg.entries(cfg.modes[0])):
        contract, role, hours, _ = entry_shape(i, cfg.contracts)
        if contract % CAPPED_EVERY == 0:
            value[contract] = value.get(contract, Decimal(0)) + Decimal(hours) * RATES[role]
    return {c: (v / 2).quantize(Decimal("0.01")) for c, v in value.items()}


def request_bodies(entries: list[dict[str, Any]], per_request: int) -> list[bytes]:
    return [
        orjson.dumps({"source": SOURCE, "entries": entries[k : k + per_request]})
        for k in range(0, len(entries), per_request)
    ]


# ------------------------------------------------------------------------------------------------ load


@dataclass
class Tally:
    statuses: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)


def checker(target: str, tally: Tally, accepted: frozenset[str]) -> Callable[[bytes, int, httpx.Response], None]:
    """Checks one answer: 200, one result per entry sent, each with an expected status."""

    def check(body: bytes, sent: int, response: httpx.Response) -> None:
        if response.status_code == 429:
            raise BenchError(
                f"{target} answered 429 (rate limited: {response.text[:200]}); raise --rate-limit for this run"
            )
        if response.status_code != 200:
            raise BenchError(f"{target} answered {response.status_code}: {response.text[:500]}")
        results = orjson.loads(response.content)["results"]
        if len(results) != sent:
            raise BenchError(f"{target} answered {len(results)} results for {sent} entries")
        for result in results:
            status = result["status"]
            tally.statuses[status] += 1
            for code in result.get("codes") or ():
                tally.codes[code] += 1
            if status not in accepted:
                raise BenchError(f"{target}: unexpected result {result}")

    return check


class Meter:
    """Wall time, the server process's CPU, the bench's own CPU and the machine's busy share over the clock."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.seconds = self.server_cpu_s = self.bench_cpu_s = self.machine_busy = 0.0

    def start(self) -> None:
        self._t = time.perf_counter()
        self._server, self._bench, self._ticks = process_cpu_s(self.pid), own_cpu_s(), machine_ticks()

    def stop(self) -> None:
        self.seconds = time.perf_counter() - self._t
        self.server_cpu_s = process_cpu_s(self.pid) - self._server
        self.bench_cpu_s = own_cpu_s() - self._bench
        (busy0, total0), (busy1, total1) = self._ticks, machine_ticks()
        self.machine_busy = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0


_SSL: list[ssl.SSLContext] = []


def _ssl_context() -> ssl.SSLContext:
    # One context for every client (httpx builds one per client otherwise: ~30 ms of CPU each).
    if not _SSL:
        _SSL.append(httpx.create_ssl_context())
    return _SSL[0]


async def drive(
    url: str,
    headers: dict[str, str],
    key_prefix: str,
    bodies: list[bytes],
    sizes: list[int],
    clients: int,
    check: Callable[[bytes, int, httpx.Response], None],
    warm_url: str,
    meter: Meter,
) -> list[float]:
    """``clients`` concurrent clients post ``bodies`` (each with its own Idempotency-Key) until none is left."""
    latencies = [0.0] * len(bodies)
    next_body = itertools.count()
    http_clients = [
        httpx.AsyncClient(
            timeout=HTTP_TIMEOUT,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            verify=_ssl_context(),
        )
        for _ in range(clients)
    ]
    try:
        # Each client's connection is open before the clock starts.
        await all_of(http.get(warm_url) for http in http_clients)

        async def client(http: httpx.AsyncClient) -> None:
            while (k := next(next_body)) < len(bodies):
                started = time.perf_counter()
                response = await http.post(
                    url, content=bodies[k], headers={**headers, "Idempotency-Key": f"{key_prefix}-{k:07d}"}
                )
                latencies[k] = time.perf_counter() - started
                check(bodies[k], sizes[k], response)

        meter.start()
        await all_of(client(http) for http in http_clients)
        meter.stop()
        return latencies
    finally:
        for http in http_clients:
            await http.aclose()


@dataclass(frozen=True)
class Target:
    name: str
    base_url: str
    path: str
    headers: dict[str, str]
    accepted: frozenset[str]
    child: Child
    uncapped_only: bool = False  # the storage floor has no caps: it must not spend theirs


async def run_phase(
    target: Target,
    cfg: BenchConfig,
    mode: str,
    repeat: int,
    prefix: str,
    contract_ids: Sequence[str],
    count: int,
    children: list[Child],
) -> Phase:
    per_request = cfg.per_request(mode)
    entries = [entry(i, prefix, contract_ids) for i in range(count)]
    bodies = request_bodies(entries, per_request)
    sizes = [len(entries[k : k + per_request]) for k in range(0, len(entries), per_request)]
    del entries
    tally = Tally()
    pid = target.child.popen.pid
    check_alive(children)
    reset = reset_peak_rss(pid)
    meter = Meter(pid)
    latencies = await bounded(
        f"{target.name} {mode} phase",
        drive(
            target.base_url + target.path,
            target.headers,
            prefix,
            bodies,
            sizes,
            cfg.clients,
            checker(target.name, tally, target.accepted),
            target.base_url + "/healthz",
            meter,
        ),
        cfg.phase_timeout,
    )
    return Phase(
        target=target.name,
        mode=mode,
        repeat=repeat,
        entries=count,
        requests=len(bodies),
        seconds=meter.seconds,
        latencies=tuple(latencies),
        peak_rss_kib=_status_kib(pid, "VmHWM"),
        rss_since_start=not reset,
        server_cpu_s=meter.server_cpu_s,
        bench_cpu_s=meter.bench_cpu_s,
        machine_busy=meter.machine_busy,
        statuses=dict(tally.statuses),
        codes=dict(tally.codes),
    )


# ----------------------------------------------------------------------------------------------- setup


def create_key(env: dict[str, str], log_dir: Path, name: str, role: str) -> str:
    """A key from psbridge's own CLI (``psbridge clients create``), which prints the key alone on stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "clients", "create", name, "--role", role],
        env=env,
        cwd=log_dir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise BenchError(f"psbridge clients create {name} --role {role} failed: {done.stderr.strip()[-500:]}")
    return done.stdout.strip()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


async def register_contracts(
    http: httpx.AsyncClient, api: str, admin_key: str, cfg: BenchConfig, tag: str
) -> tuple[list[str], dict[int, Decimal]]:
    """Legal entity US01 and the T&M contracts, through the API; every one must come out active."""
    response = await http.put(
        f"{api}/process/v1/legal-entities/US01",
        json=LEGAL_ENTITIES["US01"].model_dump(mode="json"),
        headers=auth(admin_key),
    )
    if response.status_code not in (200, 201):
        raise BenchError(f"PUT legal entity US01 answered {response.status_code}: {response.text[:300]}")
    caps = time_caps(cfg)
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(index: int) -> str:
        async with gate:
            response = await http.post(
                f"{api}/process/v1/contracts",
                json=contract_body(tag, index, caps.get(index)),
                headers={**auth(admin_key), "Idempotency-Key": f"bench-contract-{tag}-{index}"},
            )
        if response.status_code != 201:
            raise BenchError(f"registering contract {index} answered {response.status_code}: {response.text[:500]}")
        answer = response.json()
        if answer["status"] != "active":
            raise BenchError(f"contract {index} is {answer['status']}: {answer.get('exceptions')}")
        return str(answer["id"])

    ids = await bounded("registering contracts", all_of(one(i) for i in range(cfg.contracts)), cfg.phase_timeout)
    return ids, caps


async def probe_endpoint(http: httpx.AsyncClient, api: str, key: str) -> tuple[bool, str]:
    """Does this working tree serve ``POST /process/v1/time-entries``? (An empty batch changes nothing.)"""
    response = await http.post(
        f"{api}{ENDPOINT}",
        content=orjson.dumps({"source": SOURCE, "entries": []}),
        headers={**auth(key), "Idempotency-Key": f"bench-probe-{uuid.uuid4().hex}"},
    )
    if response.status_code in (404, 405):
        return False, f"{response.status_code} {response.text[:200]}"
    return True, f"{response.status_code}"


def rate_limit_for(cfg: BenchConfig) -> tuple[str, str]:
    """The rate limit psbridge runs with, and a line saying why."""
    default = str(Settings.model_fields["default_rate_limit"].default)
    sent = 1 + sum(cfg.warmup_entries[m] // cfg.per_request(m) + cfg.repeat * cfg.requests(m) for m in cfg.modes)
    if cfg.rate_limit is not None:
        return cfg.rate_limit, f"rate limit {cfg.rate_limit} (--rate-limit; the run sends {sent} requests on its key)"
    if cfg.baseline_only or sent <= parse_rate(default).amount:
        return default, f"rate limit: psbridge's default {default} (the run sends {sent} requests on its key)"
    lifted = f"{sent}/minute"
    return lifted, (
        f"rate limit: psbridge's default {default} would answer 429 (this run sends {sent} requests on one key); "
        f"PSBRIDGE_DEFAULT_RATE_LIMIT={lifted} for this run: the limiter still runs on every request"
    )


async def analyzer(database_url: str, wanted: bool, notes: list[str]) -> Callable[[], Awaitable[None]]:
    """What runs before every phase, off the clock: ``analyze`` of the bench database when PostgreSQL's
    autovacuum is off (as on a developer's or CI's server), standing in for the autovacuum a deployment runs;
    without fresh statistics the planner takes the tables the run fills for empty ones."""
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        autovacuum = await conn.fetchval("select setting from pg_settings where name = 'autovacuum'")
    finally:
        await conn.close()

    async def run_analyze() -> None:
        conn = await asyncpg.connect(database_url, timeout=10)
        try:
            await conn.execute("analyze")
        finally:
            await conn.close()

    async def nothing() -> None:
        return None

    if autovacuum == "on":
        notes.append("PostgreSQL autovacuum is on: the bench leaves statistics to it")
        return nothing
    if not wanted:
        notes.append("PostgreSQL autovacuum is off and --no-analyze: statistics stay as the empty tables had them")
        return nothing
    notes.append(
        "PostgreSQL autovacuum is off here: the bench runs ANALYZE on its database before every phase (off the "
        "clock), as autovacuum would; --no-analyze to measure with stale statistics"
    )
    return run_analyze


async def drop_queue(redis_url: str, queue_name: str) -> None:
    """The arq queue the contracts' propagation jobs went to (no worker runs here) and their job keys."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    try:
        job_ids = [j.decode() for j in await redis.zrange(queue_name, 0, -1)]
        keys = [f"arq:{kind}:{j}" for j in job_ids for kind in ("job", "retry", "in-progress", "result")]
        await redis.delete(queue_name, f"{queue_name}:health-check", *keys)
    finally:
        await redis.aclose()


# --------------------------------------------------------------------------------------------- the run


async def measure(
    cfg: BenchConfig,
    http: httpx.AsyncClient,
    targets: list[Target],
    contract_ids: list[str],
    uncapped_ids: list[str],
    tag: str,
    children: list[Child],
    analyze: Callable[[], Awaitable[None]],
) -> list[Phase]:
    for target in targets:  # warm both servers up on uncapped contracts (not measured)
        for mode in cfg.modes:
            await analyze()
            await run_phase(
                target,
                cfg,
                mode,
                0,
                f"WARM-{tag}-{target.name}-{mode}",
                uncapped_ids,
                cfg.warmup_entries[mode],
                children,
            )
    phases: list[Phase] = []
    for r in range(1, cfg.repeat + 1):
        for mode in cfg.modes:
            for target in targets:
                prefix = f"TE-{tag}-{target.name}-r{r}-{mode}"
                ids = uncapped_ids if target.uncapped_only else contract_ids
                await analyze()
                phase = await run_phase(target, cfg, mode, r, prefix, ids, cfg.entries(mode), children)
                phases.append(phase)
                _info(progress(phase))
    return phases


async def run_bench(cfg: BenchConfig) -> tuple[list[Phase], list[str]]:
    async with scratch_bench("psbridge-bench-ingestion-") as scratch:
        urls, tag, database_url, log_dir = scratch.urls, scratch.tag, scratch.database_url, scratch.log_dir
        children: list[Child] = []
        notes: list[str] = []
        settings: Settings | None = None
        try:
            before = await machine_busy_now()
            if before > QUIET_MACHINE:
                notes.append(
                    f"WARNING: the machine was {before * 100:.0f}% busy before the bench started anything (other "
                    "processes): every figure of this run shares the cores with them"
                )
                _info(notes[-1])
            conn = await asyncpg.connect(database_url, timeout=10)
            try:
                await conn.execute(TABLE_DDL)
            finally:
                await conn.close()

            sandbox_port, api_port, baseline_port = free_ports(3)
            sandbox = f"http://127.0.0.1:{sandbox_port}"
            api = f"http://127.0.0.1:{api_port}"
            baseline = f"http://127.0.0.1:{baseline_port}"
            rate_limit, rate_note = rate_limit_for(cfg)
            notes.append(rate_note)
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                env="production",
                database_url=database_url,
                redis_url=with_redis_db(urls.redis_url, cfg.redis_db),
                queue_name=f"psbridge:bench:{tag}",
                crm_url=f"{sandbox}/crm",
                psa_url=f"{sandbox}/psa",
                erp_url=f"{sandbox}/erp",
                tax_url=f"{sandbox}/tax",
                fx_url=f"{sandbox}/fx",
                default_rate_limit=rate_limit,
            )
            env = child_env(settings) | {"PSBRIDGE_DEFAULT_RATE_LIMIT": settings.default_rate_limit}
            children.append(Child("sandbox", ["sandbox", "--port", str(sandbox_port)], env, log_dir))
            admin_key = create_key(env, log_dir, f"bench-admin-{tag}", "admin")
            psa_key = create_key(env, log_dir, f"bench-psa-{tag}", "integration")
            api_child = Child("api", ["serve", "--port", str(api_port)], env, log_dir)
            children.append(api_child)
            baseline_child = Child(
                "baseline", ["--port", str(baseline_port)], env, log_dir, module="bench.ingestion_baseline"
            )
            children.append(baseline_child)

            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:

                def up(url: str) -> Callable[[], Any]:
                    async def probe() -> bool | None:
                        with contextlib.suppress(httpx.HTTPError):
                            if (await http.get(url, timeout=1)).status_code == 200:
                                return True
                        return None

                    return probe

                await wait_for("the sandbox", up(f"{sandbox}/healthz"), children, 30, 0.1)
                await wait_for("psbridge serve", up(f"{api}/readyz"), children, 60, 0.1)
                await wait_for("the baseline", up(f"{baseline}/healthz"), children, 30, 0.1)
                await reset_sandbox(http, sandbox)
                served, how = await probe_endpoint(http, api, psa_key)
                if not served and not cfg.baseline_only:
                    raise BenchError(
                        f"this working tree's psbridge serve does not answer POST {ENDPOINT} ({how}); "
                        "--baseline-only measures the baseline alone"
                    )
                if not served:
                    notes.append(f"POST {ENDPOINT} not served by this working tree ({how}): baseline only")
                _info(
                    f"ingestion bench: {', '.join(f'{m} {cfg.entries(m)} entries' for m in cfg.modes)} "
                    f"x {cfg.repeat} repeats, {cfg.clients} clients, batches of {cfg.batch_size}; PostgreSQL "
                    f"{urls.database_source} db {database_url.rpartition('/')[2]}, "
                    f"Redis {urls.redis_source} {settings.redis_url}; "
                    f"psbridge serve :{api_port} (pid {api_child.popen.pid}), baseline :{baseline_port} "
                    f"(pid {baseline_child.popen.pid}), sandbox :{sandbox_port}; logs {log_dir}"
                )
                _info(f"  {rate_note}")
                started = time.perf_counter()
                contract_ids, caps = await register_contracts(http, api, admin_key, cfg, tag)
                uncapped = [c for i, c in enumerate(contract_ids) if i not in caps]
                _info(
                    f"  setup: {len(contract_ids)} T&M contracts registered through the API "
                    f"({len(caps)} with a time cap) in {time.perf_counter() - started:.1f}s (not measured)"
                )
                targets = [
                    Target(
                        "baseline",
                        baseline,
                        "/time-entries",
                        {"Content-Type": "application/json"},
                        frozenset({"accepted"}),
                        baseline_child,
                    )
                ]
                if served and not cfg.baseline_only:
                    targets.append(
                        Target(
                            "floor",
                            baseline,
                            "/floor/time-entries",
                            {"Content-Type": "application/json"},
                            frozenset({"accepted"}),
                            baseline_child,
                            uncapped_only=True,
                        )
                    )
                    targets.append(
                        Target("psbridge", api, ENDPOINT, auth(psa_key), frozenset({"accepted", "held"}), api_child)
                    )
                analyze = await analyzer(database_url, cfg.analyze, notes)
                _info(f"  {notes[-1]}")
                phases = await measure(cfg, http, targets, contract_ids, uncapped, tag, children, analyze)
            return phases, notes
        except BenchError:
            for child in children:
                _info(child.tail())
            raise
        finally:
            stop_children(children)
            if settings is not None:
                with contextlib.suppress(Exception):
                    await drop_queue(settings.required_redis_url, settings.queue_name)


# ---------------------------------------------------------------------------------------------- report


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def _mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.0f}"


def report(cfg: BenchConfig, phases: list[Phase], notes: list[str]) -> str:
    """One row per mode: medians of entries/s (and of the per-repeat ratios); latencies pooled over repeats."""
    header = (
        f"{'mode':<7} {'baseline e/s':>12} {'floor e/s':>9} {'psbridge e/s':>12} {'ratio':>6} {'target':>7}  "
        f"{'psb p50 ms':>10} {'psb p99 ms':>10} {'psb RSS MiB':>11}  "
        f"{'base p50':>8} {'base p99':>8} {'base RSS':>8}  {'psb CPU ms/1k':>13} {'base CPU ms/1k':>14}"
    )
    rows = [header, "-" * len(header)]
    verdicts: list[str] = []
    floors: list[str] = []
    med = statistics.median
    for mode in cfg.modes:
        base = [p for p in phases if p.mode == mode and p.target == "baseline"]
        psb = [p for p in phases if p.mode == mode and p.target == "psbridge"]
        floor = [p for p in phases if p.mode == mode and p.target == "floor"]
        if not base:
            continue
        floor_rate = med(p.rate for p in floor) if floor else None
        base_rate = med(p.rate for p in base)
        psb_rate = med(p.rate for p in psb) if psb else None
        ratio = med(p.rate / b.rate for p, b in zip(psb, base, strict=False)) if psb else None
        target = TARGETS[mode]
        psb_lat = [x for p in psb for x in p.latencies]
        base_lat = [x for p in base for x in p.latencies]
        psb_p99 = percentile(psb_lat, 99) if psb_lat else None

        def cpu_per_1k(ps: list[Phase]) -> str:
            return f"{med(p.server_cpu_s / p.entries * 1000 * 1000 for p in ps):.0f}" if ps else "-"

        rows.append(
            f"{mode:<7} {base_rate:>12.0f} {floor_rate or 0:>9.0f} {psb_rate or 0:>12.0f} {ratio or 0:>6.2f} "
            f"{'>=' + str(target):>7}  "
            f"{_ms(percentile(psb_lat, 50) if psb_lat else None):>10} {_ms(psb_p99):>10} "
            f"{_mib(max((p.peak_rss_kib or 0) for p in psb) if psb else None):>11}  "
            f"{_ms(percentile(base_lat, 50)):>8} {_ms(percentile(base_lat, 99)):>8} "
            f"{_mib(max((p.peak_rss_kib or 0) for p in base)):>8}  {cpu_per_1k(psb):>13} {cpu_per_1k(base):>14}"
        )
        if ratio is not None:
            ok = ratio >= target
            verdict = f"{mode} ratio {ratio:.2f} (target >= {target}) {'met' if ok else 'MISSED'}"
            if mode == "single" and psb_p99 is not None:
                p99_ok = psb_p99 * 1000 < SINGLE_P99_TARGET_MS
                verdict += f"; single p99 {psb_p99 * 1000:.1f} ms (target < {SINGLE_P99_TARGET_MS:.0f} ms) "
                verdict += "met" if p99_ok else "MISSED"
            verdicts.append(verdict)
        if floor_rate:
            of_floor = (psb_rate or 0) / floor_rate
            floors.append(f"{mode}: floor {floor_rate / base_rate:.2f} of the baseline, psbridge {of_floor:.2f} of it")
    if floors:
        rows.append(
            "storage floor (the rows psbridge must keep per entry, no policy, no auth/idempotency): "
            + "; ".join(floors)
        )
    rows.append("targets: " + ("; ".join(verdicts) if verdicts else "psbridge not measured"))
    psb_all = [p for p in phases if p.target == "psbridge"]
    if psb_all:
        statuses: Counter[str] = Counter()
        codes: Counter[str] = Counter()
        for p in psb_all:
            statuses.update(p.statuses)
            codes.update(p.codes)
        rows.append(
            "psbridge results: "
            + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
            + ("; codes " + ", ".join(f"{k} {v}" for k, v in sorted(codes.items())) if codes else "")
        )
    busy = ", ".join(
        f"{p.target} {p.mode} {p.machine_busy * 100:.0f}%"
        f" (bench client {p.bench_cpu_s / p.seconds * 100:.0f}% of a core)"
        for p in phases
        if p.repeat == cfg.repeat
    )
    rows.append(f"machine CPU busy, last repeat ({os.cpu_count()} cores): {busy}")
    if any(p.rss_since_start for p in phases):
        rows.append("peak RSS: could not reset VmHWM between phases, so it is each process's peak since it started")
    by_repeat = "; ".join(
        f"{target} {mode} " + ", ".join(f"{p.rate:.0f}" for p in phases if p.target == target and p.mode == mode)
        for target in ("baseline", "floor", "psbridge")
        for mode in cfg.modes
        if any(p.target == target and p.mode == mode for p in phases)
    )
    rows.append(f"entries/s by repeat: {by_repeat}")
    first = next((p for p in phases if p.target == "psbridge"), None)
    if first is not None and not first.codes.get("CAP_EXCEEDED"):
        rows.append("WARNING: no entry was CAP_EXCEEDED in the first psbridge phase: the time caps were not crossed")
    rows.extend(notes)
    return "\n".join(rows)


def progress(p: Phase) -> str:
    return (
        f"  repeat {p.repeat} {p.mode:<6} {p.target:<8}: {p.entries} entries in {p.requests} requests, "
        f"{p.seconds:.2f}s, {p.rate:.0f} entries/s, p50 {percentile(p.latencies, 50) * 1000:.1f} ms, "
        f"p99 {percentile(p.latencies, 99) * 1000:.1f} ms, peak RSS {_mib(p.peak_rss_kib)} MiB, "
        f"server CPU {p.server_cpu_s:.1f}s, machine {p.machine_busy * 100:.0f}% busy"
        + (f", {dict(sorted(p.statuses.items()))}" if p.target == "psbridge" else "")
    )


def _info(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> BenchConfig:
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(prog="python -m bench.ingestion", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--entries",
        type=int,
        default=None,
        help=f"entries per mode and repeat (default: batch {defaults.batch_entries}, single {defaults.single_entries})",
    )
    parser.add_argument("--repeat", type=int, default=defaults.repeat, help="repeats")
    parser.add_argument("--clients", type=int, default=defaults.clients, help="concurrent clients")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="entries a request, batch mode")
    parser.add_argument("--contracts", type=int, default=defaults.contracts, help="T&M contracts (every 10th capped)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(defaults.modes))
    parser.add_argument(
        "--rate-limit",
        default=None,
        help="psbridge's PSBRIDGE_DEFAULT_RATE_LIMIT for the run (default: psbridge's own, "
        "raised to the run's request count when the run would cross it)",
    )
    parser.add_argument(
        "--redis-db", type=int, default=defaults.redis_db, help="Redis logical database for the bench (-1: as resolved)"
    )
    parser.add_argument("--timeout", type=float, default=defaults.phase_timeout, help="seconds per phase")
    parser.add_argument(
        "--baseline-only",
        action="store_true",
        help="measure the baseline alone (the setup still runs against psbridge)",
    )
    parser.add_argument(
        "--no-analyze",
        dest="analyze",
        action="store_false",
        help="with PostgreSQL's autovacuum off, do not ANALYZE the bench database before each phase",
    )
    parser.add_argument(
        "--loop", choices=("uvloop", "asyncio"), default=defaults.loop, help="the load generator's event loop"
    )
    args = parser.parse_args(argv)
    batch_entries = defaults.batch_entries if args.entries is None else args.entries
    single_entries = defaults.single_entries if args.entries is None else args.entries
    if (
        min(batch_entries, single_entries, args.repeat, args.clients, args.batch_size) < 1
        or args.contracts < CAPPED_EVERY
    ):
        parser.error(f"--entries, --repeat, --clients, --batch-size must be >= 1, --contracts >= {CAPPED_EVERY}")
    if args.batch_size > Settings.model_fields["max_batch_entries"].default:
        parser.error("--batch-size is over psbridge's max_batch_entries")
    return BenchConfig(
        batch_entries=batch_entries,
        single_entries=single_entries,
        repeat=args.repeat,
        clients=args.clients,
        batch_size=args.batch_size,
        contracts=args.contracts,
        modes=tuple(dict.fromkeys(args.modes)),
        rate_limit=args.rate_limit,
        phase_timeout=args.timeout,
        redis_db=None if args.redis_db < 0 else args.redis_db,
        baseline_only=args.baseline_only,
        loop=args.loop,
        analyze=args.analyze,
    )


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)

    async def _main() -> tuple[list[Phase], list[str]]:
        # SIGTERM cancels the run like Ctrl-C does, so the finally blocks stop processes and drop the database.
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await run_bench(cfg)

    started = time.perf_counter()
    try:
        with asyncio.Runner(loop_factory=_loop_factory(cfg.loop)) as runner:
            phases, notes = runner.run(_main())
    except BenchError as exc:
        _info(f"bench failed: {exc}")
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        _info("bench interrupted")
        return 130
    notes.append(f"the ingestion bench took {time.perf_counter() - started:.0f}s, setup and warm-up included")
    print(report(cfg, phases, notes), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
