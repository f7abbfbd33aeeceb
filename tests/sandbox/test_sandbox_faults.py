"""Injected faults: concurrency limit, down, error rate, dropped responses, determinism."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

ERP = "/erp/services/rest/record/v1"
CUSTOMER = {"companyName": "Acme Corp", "subsidiary": "US01"}


async def set_faults(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/__sandbox/faults", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_erp_concurrency_limit_answers_netsuite_429_without_retry_after(
    client: httpx.AsyncClient,
) -> None:
    await set_faults(client, {"erp": {"max_concurrency": 2, "latency_ms": 100}})

    responses = await asyncio.gather(*(client.get(f"{ERP}/invoice") for _ in range(5)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 200, 429, 429, 429]
    rejected = next(r for r in responses if r.status_code == 429)
    assert "retry-after" not in rejected.headers
    body = rejected.json()
    assert body["status"] == 429
    assert body["o:errorDetails"][0]["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"
    assert body["o:errorDetails"][0]["detail"].startswith("Concurrent request limit exceeded")

    # Slots are released: the next request passes.
    assert (await client.get(f"{ERP}/invoice")).status_code == 200


async def test_default_erp_limit_is_five(client: httpx.AsyncClient) -> None:
    faults = await set_faults(client, {"erp": {"latency_ms": 50}})
    assert faults["erp"]["max_concurrency"] == 5
    responses = await asyncio.gather(*(client.get(f"{ERP}/invoice") for _ in range(7)))
    assert sorted(r.status_code for r in responses).count(429) == 2


async def test_concurrency_limit_is_per_system(client: httpx.AsyncClient) -> None:
    await set_faults(client, {"erp": {"max_concurrency": 1, "latency_ms": 50}})
    responses = await asyncio.gather(client.get(f"{ERP}/invoice"), client.get("/tax/jurisdictions/GB"))
    assert [r.status_code for r in responses] == [200, 200]


async def test_down_system_answers_503_and_others_keep_working(client: httpx.AsyncClient) -> None:
    await set_faults(client, {"erp": {"down": True}})
    down = await client.put(f"{ERP}/customer/eid:ACME", json=CUSTOMER)
    assert down.status_code == 503
    assert down.json()["o:errorDetails"][0]["o:errorCode"] == "SERVICE_UNAVAILABLE"
    assert (await client.get("/tax/jurisdictions/GB")).status_code == 200

    await set_faults(client, {"erp": {"down": False}})
    assert (await client.get(f"{ERP}/customer/eid:ACME")).status_code == 404  # the PUT had no effect


async def test_error_rate_fails_before_any_effect(client: httpx.AsyncClient) -> None:
    await set_faults(client, {"psa": {"error_rate": 1}})
    response = await client.post("/psa/projects", json={"external_id": "CTR-1", "name": "X"})
    assert response.status_code == 500
    assert response.json()["code"] == "UNEXPECTED_ERROR"

    await set_faults(client, {"psa": {"error_rate": 0}})
    assert (await client.get("/psa/projects", params={"external_id": "CTR-1"})).json() == {"items": []}


async def test_reject_rate_refuses_before_any_effect(client: httpx.AsyncClient) -> None:
    await set_faults(client, {"psa": {"reject_rate": 1}})
    response = await client.post("/psa/projects", json={"external_id": "CTR-1", "name": "X"})
    assert response.status_code == 422
    assert response.json()["code"] == "INVALID_REQUEST"

    await set_faults(client, {"psa": {"reject_rate": 0}})
    assert (await client.get("/psa/projects", params={"external_id": "CTR-1"})).json() == {"items": []}


async def test_dropped_response_still_commits_the_write(client: httpx.AsyncClient) -> None:
    await client.put(f"{ERP}/customer/eid:ACME", json=CUSTOMER)
    await set_faults(client, {"erp": {"drop_response_rate": 1}})
    lost = await client.put(f"{ERP}/customer/eid:ACME-2", json=CUSTOMER)
    assert lost.status_code == 504
    # Reads are never dropped, and the write did happen.
    assert (await client.get(f"{ERP}/customer/eid:ACME-2")).json()["id"] == "2"

    # The client's retry of the same upsert lands on the same record.
    await set_faults(client, {"erp": {"drop_response_rate": 0}})
    retry = await client.put(f"{ERP}/customer/eid:ACME-2", json=CUSTOMER)
    assert retry.status_code == 204
    assert retry.headers["location"].endswith("/customer/2")


async def test_seed_makes_error_injection_reproducible(client: httpx.AsyncClient) -> None:
    async def run() -> list[int]:
        await set_faults(client, {"seed": 1, "fx": {"error_rate": 0.5}})
        return [(await client.get("/fx/rates/2026-03-31/EUR/EUR")).status_code for _ in range(20)]

    first, second = await run(), await run()
    assert first == second
    assert {200, 500} == set(first)


async def test_latency_delays_the_answer(client: httpx.AsyncClient) -> None:
    await set_faults(client, {"tax": {"latency_ms": 60}})
    started = asyncio.get_running_loop().time()
    assert (await client.get("/tax/jurisdictions/DE")).status_code == 200
    assert asyncio.get_running_loop().time() - started >= 0.055


async def test_faults_merge_and_validate(client: httpx.AsyncClient) -> None:
    await set_faults(client, {"erp": {"error_rate": 0.2, "closed_periods": ["2026-01"]}})
    merged = await set_faults(client, {"erp": {"latency_ms": 5}})
    assert merged["erp"] == {
        "error_rate": 0.2,
        "reject_rate": 0.0,
        "latency_ms": 5.0,
        "drop_response_rate": 0.0,
        "down": False,
        "max_concurrency": 5,
        "closed_periods": ["2026-01"],
    }
    assert (await client.get("/__sandbox/faults")).json() == merged

    for bad in (
        {"erp": {"error_rate": 2}},
        {"erp": {"reject_rate": -0.1}},
        {"erp": {"nope": 1}},
        {"billing": {"down": True}},
        {"tax": {"closed_periods": ["2026-01"]}},
        {"erp": {"closed_periods": ["2026-13"]}},
        {"erp": {"max_concurrency": 0}},
        {"erp": {"down": "yes"}},
        {"seed": "x"},
    ):
        response = await client.post("/__sandbox/faults", json=bad)
        assert response.status_code == 422, bad
    # A rejected body changes nothing.
    assert (await client.get("/__sandbox/faults")).json() == merged
