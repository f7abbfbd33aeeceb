"""/metrics reads the work still to do at scrape time: open exceptions per queue and code, the queue depth."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.settings import Settings
from tests.factories import acme, auth, register


async def _scrape(api: httpx.AsyncClient, key: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await api.get("/metrics", headers=auth(key))
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _open(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], queue: str, code: str) -> float | None:
    return samples.get(("psbridge_exceptions_open", frozenset({("queue", queue), ("code", code)})))


async def _nobody(api: httpx.AsyncClient, key: str, n: int, **changes: object) -> list[dict[str, str]]:
    """A contract whose customer the ERP does not know: blocked, with its exceptions."""
    body = acme(
        external_id=f"800XX09{n:02d}",
        number=f"SOW-METRICS-{n}",
        customer={"external_id": f"NOBODY-{n}", "name": "Nobody"},
        **changes,
    )
    created = (await register(api, key, body)).json()
    assert created["status"] == "blocked", created
    exceptions: list[dict[str, str]] = created["exceptions"]
    return exceptions


async def test_open_exceptions_are_counted_per_queue_and_code_and_fall_back_to_zero(api, keys) -> None:
    admin = keys["admin"]
    before = await _scrape(api, admin)
    assert _open(before, "integration", "CUSTOMER_NOT_IN_ERP") == 0
    assert _open(before, "finance", "UNKNOWN_TAX_JURISDICTION") == 0

    [first] = await _nobody(api, keys["integration"], 1)
    second = await _nobody(api, keys["integration"], 2, tax={"jurisdiction": "XX-YY"})
    assert sorted(e["code"] for e in second) == ["CUSTOMER_NOT_IN_ERP", "UNKNOWN_TAX_JURISDICTION"]
    # Acknowledged is still open: someone owns it, nobody has fixed it.
    acknowledged = await api.post(f"/process/v1/exceptions/{first['id']}/acknowledge", headers=auth(admin))
    assert acknowledged.status_code == 200, acknowledged.text

    during = await _scrape(api, admin)
    assert _open(during, "integration", "CUSTOMER_NOT_IN_ERP") == 2
    assert _open(during, "finance", "UNKNOWN_TAX_JURISDICTION") == 1
    assert _open(during, "finance", "TAX_VALIDATION_FAILED") == 0

    for item in (first, *second):
        resolved = await api.post(f"/process/v1/exceptions/{item['id']}/resolve", headers=auth(admin))
        assert resolved.status_code == 200, resolved.text
    after = await _scrape(api, admin)
    assert _open(after, "integration", "CUSTOMER_NOT_IN_ERP") == 0
    assert _open(after, "finance", "UNKNOWN_TAX_JURISDICTION") == 0


async def test_queue_depth_counts_the_jobs_waiting_in_this_queue(api, keys, settings: Settings, run_jobs) -> None:
    depth = ("psbridge_queue_depth", frozenset({("queue", settings.queue_name)}))
    await run_jobs()  # whatever earlier tests left queued
    before = (await _scrape(api, keys["admin"]))[depth]

    created = (await register(api, keys["integration"], acme(external_id="800XX0950"))).json()
    assert created["status"] == "active", created  # its propagation to the PSA and the ERP is now a job

    assert (await _scrape(api, keys["admin"]))[depth] == before + 1
    await run_jobs()
    # At most what was there before: a retry some earlier test deferred may have come due and run too.
    assert (await _scrape(api, keys["admin"]))[depth] <= before
