"""A time cap under concurrent ingestion, on real processes: two ``psbridge serve``, two workers, one database.

One time-and-materials contract with a time cap and a dated rate card. Six batches of 50 entries and
24 single-entry requests race across both API processes, some entries sent twice at once (in two
requests, or twice in one batch); then corrections, voids (``DELETE`` and ``"void": true``), resends
and new entries race again. Whatever the arrival order, DESIGN.md's allocation must hold to the cent:
the room goes to live entries in (work date, external id by code point) order, the straddling entry
is split, the rest is held. The expectation is computed here, in ``Decimal``, from the generated
entries; the engine is read back through each entry's GET and a billing run for the contract. Then
every entry's latest state is sent again: all duplicates (or repeated voids), nothing changes, and a
second billing run invoices nothing.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
import threading
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.dev.servers import ServiceUrls
from tests.e2e.support import (
    Procs,
    bearer,
    two_apis,
)
from tests.work import PSA, RUNS, TIME, tm

pytestmark = pytest.mark.e2e

CAP = Decimal("20000.00")
CENT = Decimal("0.01")
# Dated rates: consultants cost more from 16 February; the architect's rate has cents that round.
RATE_CARD = [
    {"role": "consultant", "rate": "200.00", "effective_from": "2026-01-05"},
    {"role": "consultant", "rate": "212.50", "effective_from": "2026-02-16"},
    {"role": "senior_architect", "rate": "287.35", "effective_from": "2026-01-05"},
]
DAYS = [
    dt.date(2026, 2, 2) + dt.timedelta(days=n)
    for n in range(26)
    if (dt.date(2026, 2, 2) + dt.timedelta(days=n)).weekday() < 5
]
BATCHES, BATCH_SIZE, SINGLES_FIRST, SINGLES_LATER = 6, 50, 24, 16
AS_OF = "2026-02-28"


# ------------------------------------------------------------------------------------------ the entries


def rate(role: str, day: dt.date) -> Decimal:
    """The rate card's rate for ``role`` on ``day``: the latest start on or before it."""
    starts = [r for r in RATE_CARD if r["role"] == role and dt.date.fromisoformat(r["effective_from"]) <= day]
    return Decimal(max(starts, key=lambda r: r["effective_from"])["rate"])


@dataclass(frozen=True)
class Work:
    external_id: str
    day: dt.date
    hours: Decimal
    role: str

    @property
    def value(self) -> Decimal:
        return (self.hours * rate(self.role, self.day)).quantize(CENT, rounding=ROUND_HALF_UP)

    def body(self, contract_id: str) -> dict[str, Any]:
        return {
            "external_id": self.external_id,
            "contract_id": contract_id,
            "resource": {"external_id": f"R-{self.role[:3].upper()}", "name": self.role.title(), "role": self.role},
            "work_date": self.day.isoformat(),
            "hours": format(self.hours, "f"),
            "description": "Sprint work",
            "approved_at": f"{self.day.isoformat()}T18:00:00Z",
        }


def void_body(external_id: str) -> dict[str, Any]:
    return {"external_id": external_id, "void": True}


def generate(rng: random.Random, first: int, count: int) -> list[Work]:
    """``count`` entries ``WC-<n>`` (unpadded, so code point order differs from numeric order)."""
    return [
        Work(
            f"WC-{n}",
            rng.choice(DAYS),
            Decimal(rng.randint(10, 100)) / 100,  # 0.10 .. 1.00 h: about 120.00 an entry
            rng.choice(["consultant", "consultant", "senior_architect"]),
        )
        for n in range(first, first + count)
    ]


@dataclass
class Plan:
    """What is sent, request by request, and what each entry must end as."""

    first_wave: list[tuple[str, list[dict[str, Any]]]]  # (kind of request, entries); "one" = a single entry
    second_wave: list[tuple[str, Any]]  # also ("delete", external_id)
    latest: dict[str, Work]  # every entry's latest content
    voided: set[str]
    corrected: set[str]
    new: set[str]  # first sent in the second wave


def plan(contract_id: str) -> Plan:
    rng = random.Random(20260214)
    batched = generate(rng, 1, BATCHES * BATCH_SIZE)
    singles = generate(rng, 1001, SINGLES_FIRST)
    later = generate(rng, 2001, SINGLES_LATER)
    body = partial(Work.body, contract_id=contract_id)

    # First wave: each batch a shuffled slice; a few entries sent twice in one batch, a few again alone
    # or inside another batch while their first copy is in flight.
    shuffled = batched[:]
    rng.shuffle(shuffled)
    batches = [[body(w) for w in shuffled[i * BATCH_SIZE : (i + 1) * BATCH_SIZE]] for i in range(BATCHES)]
    for i in range(BATCHES):
        batches[i].append(copy.deepcopy(batches[i][3]))  # the same external id twice in one request
        batches[i].insert(10, copy.deepcopy(batches[(i + 1) % BATCHES][20]))  # in another batch at once
    first_wave: list[tuple[str, list[dict[str, Any]]]] = [("batch", b) for b in batches]
    first_wave += [("one", [body(w)]) for w in singles]
    first_wave += [("one", [body(w)]) for w in rng.sample(batched, 8)]  # resent alone, concurrently
    rng.shuffle(first_wave)

    latest = {w.external_id: w for w in [*batched, *singles]}
    ordered = sorted(latest.values(), key=lambda w: (w.day, w.external_id))
    # Second wave: corrections up and down (two move their work date), voids on both sides of the cap
    # boundary, resends, new entries — none of them touching the same entry twice.
    pool = rng.sample(ordered, 40)
    fixes, voids, resends = pool[:10], pool[10:16], pool[16:28]
    corrected: dict[str, Work] = {}
    for n, w in enumerate(fixes):
        hours = w.hours * Decimal("0.5") if n % 2 else w.hours + Decimal("0.37")
        day = DAYS[(DAYS.index(w.day) + 7) % len(DAYS)] if n in (0, 3) else w.day
        corrected[w.external_id] = Work(w.external_id, day, hours.quantize(CENT), w.role)
    second: list[tuple[str, Any]] = [("one", [body(corrected[w.external_id])]) for w in fixes[:5]]
    second += [("delete", w.external_id) for w in voids[:3]]
    second += [("one", [body(w)]) for w in later]
    mixed = (
        [body(corrected[w.external_id]) for w in fixes[5:]]
        + [void_body(w.external_id) for w in voids[3:]]
        + [body(w) for w in resends]
    )
    rng.shuffle(mixed)
    second += [("batch", mixed[: len(mixed) // 2]), ("batch", mixed[len(mixed) // 2 :])]
    rng.shuffle(second)

    latest.update(corrected)
    latest.update({w.external_id: w for w in later})
    return Plan(
        first_wave, second, latest, {w.external_id for w in voids}, set(corrected), {w.external_id for w in later}
    )


def allocation(latest: dict[str, Work], voided: set[str]) -> dict[str, tuple[Any, ...]]:
    """DESIGN.md: the room goes to live entries in (work date, external id by code point) order;
    the straddling entry splits, the rest is held. Per entry: (billing, amount, held_amount, codes)."""
    expected: dict[str, tuple[Any, ...]] = {x: ("non_billable", "0.00", None, ["VOIDED"]) for x in voided}
    room = CAP
    for w in sorted((w for x, w in latest.items() if x not in voided), key=lambda w: (w.day, w.external_id)):
        billable = min(w.value, room)
        room -= billable
        held = w.value - billable
        expected[w.external_id] = (
            "billable" if billable > 0 else "held",
            f"{billable:.2f}",
            f"{held:.2f}" if held > 0 else None,
            ["CAP_EXCEEDED"] if held > 0 else [],
        )
    return expected


def money(result: dict[str, Any]) -> tuple[Any, ...]:
    return result["billing"], result["amount"], result["held_amount"], result["codes"]


# ------------------------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    apis: tuple[str, str]
    keys: dict[str, str]
    procs: Procs
    http: httpx.Client

    def url(self, api: int, path: str) -> str:
        return f"{self.apis[api % 2]}{path}"

    @contextmanager
    def diagnosed(self) -> Iterator[None]:
        """A failing assertion gets the processes' output tails appended."""
        try:
            yield
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.procs.diagnostics()}") from None
        self.procs.check_alive()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, service_urls: ServiceUrls) -> Iterator[Stack]:
    log_dir: Path = tmp_path_factory.mktemp("work-concurrency")
    # The per-client budget (600/minute by default) would throttle one client's ~1,500 requests here.
    with two_apis(
        log_dir, service_urls.database_url, service_urls.redis_url, "work", timeout=60,
        PSBRIDGE_DEFAULT_RATE_LIMIT="100000/minute",
    ) as s:  # fmt: skip
        yield Stack(s.apis, s.keys, s.procs, s.http)
        s.procs.check_alive()


# ---------------------------------------------------------------------------------------- the requests


def race(stack: Stack, requests: list[tuple[str, Any]], workers: int = 16) -> list[httpx.Response]:
    """Every request at once (after a barrier), alternating the API processes; responses in order."""
    threads = min(workers, len(requests))
    barrier = threading.Barrier(threads)
    local = threading.local()
    clients: list[httpx.Client] = []

    def send(indexed: tuple[int, tuple[str, Any]]) -> httpx.Response:
        i, (kind, payload) = indexed
        if not hasattr(local, "http"):
            local.http = httpx.Client(timeout=60)
            clients.append(local.http)
            barrier.wait(30)
        headers = bearer(stack.keys["psa"])
        if kind == "delete":
            return local.http.delete(stack.url(i, f"{TIME}/{PSA}/{payload}"), headers=headers)  # type: ignore[no-any-return]
        return local.http.post(stack.url(i, TIME), json={"source": PSA, "entries": payload}, headers=headers)  # type: ignore[no-any-return]

    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            responses = list(pool.map(send, enumerate(requests)))
    finally:
        for c in clients:
            c.close()
    for (kind, payload), r in zip(requests, responses, strict=True):
        assert r.status_code == 200, f"{kind} {payload!r:.300}: {r.status_code} {r.text}"
    return responses


def entries_now(stack: Stack, external_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each entry's GET, alternating the API processes, in parallel."""

    def get(indexed: tuple[int, str]) -> tuple[str, dict[str, Any]]:
        i, external_id = indexed
        r = stack.http.get(stack.url(i, f"{TIME}/{PSA}/{external_id}"), headers=bearer(stack.keys["finance"]))
        assert r.status_code == 200, f"GET {external_id}: {r.status_code} {r.text}"
        return external_id, r.json()

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(get, enumerate(external_ids)))


def results_by_id(requests: list[tuple[str, Any]], responses: list[httpx.Response]) -> dict[str, list[dict[str, Any]]]:
    """Every result the requests got, by external id (a DELETE's answer counts as its entry's result)."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (kind, payload), r in zip(requests, responses, strict=True):
        results = [r.json()] if kind == "delete" else r.json()["results"]
        sent = [payload] if kind == "delete" else [e["external_id"] for e in payload]
        assert [x["external_id"] for x in results] == sent, r.text
        for x in results:
            out[x["external_id"]].append(x)
    return out


def billing_run(stack: Stack, contract_id: str, api: int) -> list[dict[str, Any]]:
    r = stack.http.post(
        stack.url(api, RUNS), json={"as_of": AS_OF, "contract_id": contract_id}, headers=bearer(stack.keys["finance"])
    )
    assert r.status_code == 201, f"billing run: {r.status_code} {r.text}"
    invoices: list[dict[str, Any]] = r.json()["invoices"]
    return invoices


def total(values: Iterator[str | None] | list[str | None]) -> Decimal:
    return sum((Decimal(v) for v in values if v is not None), Decimal(0))


# ------------------------------------------------------------------------------------------------ test


def test_a_time_cap_holds_to_the_cent_under_concurrent_batches_corrections_and_voids(stack: Stack) -> None:
    with stack.diagnosed():
        r = stack.http.post(
            stack.url(0, "/process/v1/contracts"),
            json=tm(time_cap=f"{CAP:.2f}", rate_card=copy.deepcopy(RATE_CARD)),
            headers=bearer(stack.keys["crm"]),
        )
        assert r.status_code == 201 and r.json()["status"] == "active", f"{r.status_code} {r.text}"
        contract_id = r.json()["id"]
        sent = plan(contract_id)
        expected = allocation(sent.latest, sent.voided)
        live = [w for x, w in sent.latest.items() if x not in sent.voided]
        value = sum((w.value for w in live), Decimal(0))
        assert value > CAP + 1000, f"the generated work ({value}) must cross the cap ({CAP})"
        split = [x for x, e in expected.items() if e[0] == "billable" and e[2] is not None]
        assert len(split) == 1, f"exactly one entry straddles the cap: {split}"

        # First wave: originals and concurrent duplicates. Each external id is new exactly once.
        first = race(stack, sent.first_wave)
        for external_id, results in results_by_id(sent.first_wave, first).items():
            statuses = Counter(x["status"] for x in results)
            new = statuses["accepted"] + statuses["held"]
            assert new == 1 and statuses["duplicate"] == len(results) - 1, (external_id, results)

        # Second wave: corrections, voids, resends and new entries, all at once.
        second = race(stack, sent.second_wave)
        for external_id, results in results_by_id(sent.second_wave, second).items():
            [result] = results
            if external_id in sent.corrected:
                assert result["status"] == "corrected", result
            elif external_id in sent.voided:
                assert (result["status"], money(result)) == ("voided", expected[external_id]), result
            elif external_id in sent.new:
                assert result["status"] in ("accepted", "held"), result
            else:
                assert result["status"] == "duplicate", result

        # Every entry once, its latest version's content, and the allocation to the cent.
        ids = sorted(sent.latest)
        before = entries_now(stack, ids)
        for external_id, entry in before.items():
            assert (entry["contract_id"], entry["source"]) == (contract_id, PSA), entry
            versions = entry["versions"]
            corrected = external_id in sent.corrected
            assert [v["version"] for v in versions] == list(range(1, len(versions) + 1)), versions
            assert len(versions) == 1 + corrected + (external_id in sent.voided), (external_id, versions)
            w = sent.latest[external_id]
            content = [v for v in versions if not v["voided"]][-1]
            assert (Decimal(content["hours"]), content["work_date"], content["resource"]["role"]) == (
                w.hours,
                w.day.isoformat(),
                w.role,
            ), (external_id, versions)
            assert versions[-1]["voided"] is (external_id in sent.voided), versions
        got = {x: money(e) for x, e in before.items()}
        wrong = {x: (got[x], expected[x]) for x in ids if got[x] != expected[x]}
        assert not wrong, f"{len(wrong)} entries off the allocation (got, expected): {dict(list(wrong.items())[:10])}"
        assert total(e["amount"] for e in before.values()) == CAP
        assert total(e["held_amount"] for e in before.values()) == value - CAP
        assert all(e["status"] == "voided" for x, e in before.items() if x in sent.voided)

        # One open CAP_EXCEEDED work item for the contract, however many requests held work at once.
        r = stack.http.get(
            stack.url(1, "/process/v1/exceptions"),
            params={"code": "CAP_EXCEEDED", "status": "open", "limit": 100},
            headers=bearer(stack.keys["finance"]),
        )
        assert r.status_code == 200, r.text
        assert [e["contract_id"] for e in r.json()["items"]].count(contract_id) == 1, r.json()

        # The billing run invoices exactly the cap, line by line as the allocation says.
        [invoice] = billing_run(stack, contract_id, api=1)
        assert (invoice["contract_id"], invoice["kind"], invoice["currency"]) == (contract_id, "invoice", "USD"), (
            invoice
        )
        assert Decimal(invoice["net"]) == CAP, invoice
        r = stack.http.get(stack.url(0, f"/process/v1/invoices/{invoice['id']}"), headers=bearer(stack.keys["finance"]))
        assert r.status_code == 200, r.text
        lines: dict[tuple[str, Decimal], Decimal] = defaultdict(Decimal)
        for w in live:
            if (part := Decimal(expected[w.external_id][1])) > 0:
                lines[(w.role, rate(w.role, w.day))] += part
        assert sorted(Decimal(line["net"]) for line in r.json()["lines"]) == sorted(lines.values()), r.json()["lines"]

        # Every entry's latest state again, in batches at once: all duplicates (or repeated voids), nothing moves.
        again = [void_body(x) if x in sent.voided else sent.latest[x].body(contract_id) for x in ids]
        random.Random(7).shuffle(again)
        resend = [("batch", again[i : i + BATCH_SIZE]) for i in range(0, len(again), BATCH_SIZE)]
        for external_id, results in results_by_id(resend, race(stack, resend)).items():
            [result] = results
            status = "voided" if external_id in sent.voided else "duplicate"
            assert (result["status"], money(result)) == (status, expected[external_id]), result
        after = entries_now(stack, ids)
        assert {x: money(e) for x, e in after.items()} == got
        assert {x: len(e["versions"]) for x, e in after.items()} == {x: len(e["versions"]) for x, e in before.items()}
        billed = [t for e in after.values() for t in e["transactions"] if t["status"] == "invoiced"]
        assert {t["invoice_id"] for t in billed} == {invoice["id"]}
        assert total(t["amount"] for t in billed) == CAP
        assert billing_run(stack, contract_id, api=0) == []
