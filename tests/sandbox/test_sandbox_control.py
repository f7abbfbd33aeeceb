"""Control surface: request log with cursors, reset, health, fresh state per app."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime

import httpx

from sandbox.app import create_sandbox_app

ERP = "/erp/services/rest/record/v1"
RFC3339_MICROS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_log_records_backend_requests_with_rfc3339_times(client: httpx.AsyncClient) -> None:
    await client.get("/tax/jurisdictions/GB")
    await client.get(f"{ERP}/invoice", params={"limit": 1})
    await client.get("/healthz")  # control routes are not logged

    log = (await client.get("/__sandbox/log")).json()
    assert log["next_cursor"] is None
    assert [(e["seq"], e["system"], e["method"], e["path"], e["status"]) for e in log["items"]] == [
        (1, "tax", "GET", "/tax/jurisdictions/GB", 200),
        (2, "erp", "GET", f"{ERP}/invoice", 200),
    ]
    for entry in log["items"]:
        assert RFC3339_MICROS.fullmatch(entry["started_at"]), entry
        assert RFC3339_MICROS.fullmatch(entry["ended_at"]), entry
        started = datetime.fromisoformat(entry["started_at"])
        assert datetime.fromisoformat(entry["ended_at"]) >= started


async def test_log_pages_with_cursor_and_filters_by_system(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await client.get(f"{ERP}/invoice")
        await client.get("/fx/rates/2026-01-01/USD/USD")

    first = (await client.get("/__sandbox/log", params={"system": "erp", "limit": 2})).json()
    assert [e["seq"] for e in first["items"]] == [1, 3]
    assert first["next_cursor"] == "3"
    second = (await client.get("/__sandbox/log", params={"system": "erp", "limit": 2, "after": "3"})).json()
    assert [e["seq"] for e in second["items"]] == [5]
    assert second["next_cursor"] is None

    # A page that ends exactly at the last entry says so.
    exact = (await client.get("/__sandbox/log", params={"system": "fx", "limit": 3})).json()
    assert [e["seq"] for e in exact["items"]] == [2, 4, 6]
    assert exact["next_cursor"] is None

    # Polling from the end sees only new entries.
    await client.get("/fx/rates/2026-01-01/USD/USD")
    new = (await client.get("/__sandbox/log", params={"after": "6"})).json()
    assert [e["seq"] for e in new["items"]] == [7]


async def test_log_includes_faults_and_429s_with_overlapping_times(client: httpx.AsyncClient) -> None:
    await client.post("/__sandbox/faults", json={"erp": {"max_concurrency": 2, "latency_ms": 50}})
    await asyncio.gather(*(client.get(f"{ERP}/invoice") for _ in range(3)))
    await client.post("/__sandbox/faults", json={"erp": {"down": True}})
    await client.get(f"{ERP}/invoice")

    items = (await client.get("/__sandbox/log", params={"system": "erp"})).json()["items"]
    assert sorted(e["status"] for e in items) == [200, 200, 429, 503]
    served = [e for e in items if e["status"] == 200]
    # The two admitted requests ran at the same time: that is what the limit counts.
    assert max(e["started_at"] for e in served) < min(e["ended_at"] for e in served)


async def test_log_query_validation(client: httpx.AsyncClient) -> None:
    for params in ({"system": "billing"}, {"after": "x"}, {"limit": "0"}, {"limit": "5000"}):
        assert (await client.get("/__sandbox/log", params=params)).status_code == 422, params


async def test_reset_restores_seeds_and_default_faults(client: httpx.AsyncClient) -> None:
    await client.put(f"{ERP}/customer/eid:ACME", json={"companyName": "Acme", "subsidiary": "US01"})
    await client.put("/tax/rates/GB", json={"rate": "0.10"})
    await client.put("/tax/rates/US-TX", json={"rate": "0.0625"})
    await client.put("/fx/rates/2026-03-31/USD/EUR", json={"rate": "0.9"})
    await client.post("/psa/projects", json={"external_id": "CTR-1", "name": "X"})
    await client.post("/__sandbox/faults", json={"erp": {"down": True, "closed_periods": ["2026-01"]}})

    response = await client.post("/__sandbox/reset")
    assert response.status_code == 204

    assert (await client.get("/__sandbox/log")).json() == {"items": [], "next_cursor": None}
    assert (await client.get(f"{ERP}/customer/eid:ACME")).status_code == 404
    assert (await client.get("/tax/jurisdictions/GB")).json()["rate"] == "0.20"
    assert (await client.get("/tax/jurisdictions/US-TX")).status_code == 404
    assert (await client.get("/fx/rates/2026-03-31/USD/EUR")).status_code == 404
    assert (await client.get("/psa/projects")).json() == {"items": []}
    erp_faults = (await client.get("/__sandbox/faults")).json()["erp"]
    assert (erp_faults["down"], erp_faults["closed_periods"], erp_faults["max_concurrency"]) == (False, [], 5)
    # Ids start again, but log cursors keep counting so a held cursor never skips entries.
    await client.put(f"{ERP}/customer/eid:NEW", json={"companyName": "New", "subsidiary": "US01"})
    assert (await client.get(f"{ERP}/customer/eid:NEW")).json()["id"] == "1"
    assert (await client.get("/__sandbox/log")).json()["items"][0]["seq"] == 6  # 5 requests before the reset


async def test_each_app_has_its_own_state() -> None:
    async def client_for() -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_sandbox_app()), base_url="http://sandbox")

    async with await client_for() as one, await client_for() as two:
        await one.put("/fx/rates/2026-03-31/USD/EUR", json={"rate": "0.9"})
        assert (await two.get("/fx/rates/2026-03-31/USD/EUR")).status_code == 404


async def test_unknown_paths_and_methods_answer_json(client: httpx.AsyncClient) -> None:
    assert (await client.get("/nowhere")).json()["code"] == "NOT_FOUND"
    not_allowed = await client.delete("/tax/jurisdictions/GB")
    assert not_allowed.status_code == 405
    assert not_allowed.json()["code"] == "HTTP_ERROR"
    assert (await client.post("/__sandbox/faults", content=b"nope")).status_code == 400
