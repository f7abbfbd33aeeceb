"""PSA projects and billing feedback; CRM contract billing status."""

from __future__ import annotations

from typing import Any

import httpx

PROJECT: dict[str, Any] = {
    "external_id": "CTR-2026-001",
    "name": "ERP rollout",
    "customer": "ACME-001",
    "billing_model": "fixed_fee",
    "currency": "USD",
    "budget": "300000.00",
    "start_date": "2026-01-01",
    "end_date": "2026-12-31",
    "milestones": [
        {"key": "M1", "name": "Design", "amount": "100000.00", "due_date": "2026-03-31", "depends_on": []},
        {"key": "M2", "name": "Build", "amount": "200000.00", "due_date": "2026-09-30", "depends_on": ["M1"]},
    ],
}


async def test_project_create_is_idempotent_by_external_id(client: httpx.AsyncClient) -> None:
    created = await client.post("/psa/projects", json=PROJECT)
    assert created.status_code == 201
    project = created.json()
    assert project["id"] == "PRJ-00001"
    assert project["plan_version"] == 1
    assert project["budget"] == "300000.00"
    assert project["milestones"] == PROJECT["milestones"]

    same = await client.post("/psa/projects", json=PROJECT)
    assert same.status_code == 200
    assert same.json() == project

    updated = await client.post("/psa/projects", json={**PROJECT, "budget": "350000.00"})
    assert updated.status_code == 200
    assert (updated.json()["id"], updated.json()["budget"], updated.json()["plan_version"]) == (
        "PRJ-00001",
        "350000.00",
        2,
    )
    second = await client.post("/psa/projects", json={**PROJECT, "external_id": "CTR-2"})
    assert second.json()["id"] == "PRJ-00002"


async def test_project_get_and_find_by_external_id(client: httpx.AsyncClient) -> None:
    project = (await client.post("/psa/projects", json=PROJECT)).json()
    assert (await client.get("/psa/projects/PRJ-00001")).json() == project
    assert (await client.get("/psa/projects/PRJ-99999")).status_code == 404
    found = await client.get("/psa/projects", params={"external_id": "CTR-2026-001"})
    assert found.json() == {"items": [project]}
    assert (await client.get("/psa/projects", params={"external_id": "nope"})).json() == {"items": []}


async def test_project_plan_update_bumps_plan_version(client: httpx.AsyncClient) -> None:
    await client.post("/psa/projects", json=PROJECT)
    milestones = [*PROJECT["milestones"], {"key": "M3", "name": "Run", "amount": "50000.00"}]
    response = await client.put(
        "/psa/projects/PRJ-00001",
        json={"budget": "350000.00", "milestones": milestones, "end_date": "2027-03-31"},
    )
    assert response.status_code == 200
    project = response.json()
    assert (project["plan_version"], project["budget"], project["end_date"]) == (2, "350000.00", "2027-03-31")
    assert [m["key"] for m in project["milestones"]] == ["M1", "M2", "M3"]
    assert (await client.put("/psa/projects/PRJ-00009", json={"budget": "1.00"})).status_code == 404


async def test_project_validation(client: httpx.AsyncClient) -> None:
    for body in (
        {"name": "no external id"},
        {**PROJECT, "budget": 300000.0},
        {**PROJECT, "end_date": "31/12/2026"},
        {**PROJECT, "milestones": [{"key": "M1", "amount": "x"}]},
    ):
        response = await client.post("/psa/projects", json=body)
        assert response.status_code == 422, body
        assert response.json()["code"] == "VALIDATION_ERROR"
    assert (await client.post("/psa/projects", content=b"[")).status_code == 400


async def test_psa_billing_status_feedback(client: httpx.AsyncClient) -> None:
    items = [
        {"type": "time_entry", "external_id": "TE-1", "invoice_id": "INV-1", "status": "billed"},
        {"type": "milestone", "external_id": "M1", "invoice_id": "INV-1", "status": "billed"},
    ]
    response = await client.post("/psa/billing-status", json={"items": items})
    assert response.json() == {"updated": 2}
    await client.post("/psa/billing-status", json={"items": items[:1]})  # redelivery does not duplicate
    assert (await client.get("/psa/billing-status")).json() == {"items": items}

    bad = await client.post("/psa/billing-status", json={"items": [{**items[0], "type": "invoice"}]})
    assert bad.status_code == 422


async def test_crm_billing_status(client: httpx.AsyncClient) -> None:
    url = "/crm/contracts/CTR-2026-001/billing-status"
    status = {"invoice_id": "INV-1", "status": "posted", "amount": "1088.75", "currency": "USD"}
    response = await client.post(url, json=status)
    assert response.status_code == 200
    assert response.json() == {**status, "contract_external_id": "CTR-2026-001"}
    await client.post(url, json={**status, "status": "paid"})
    assert [s["status"] for s in (await client.get(url)).json()["items"]] == ["paid"]
    assert (await client.get("/crm/contracts/OTHER/billing-status")).json() == {"items": []}
    assert (await client.post(url, json={**status, "amount": 1088.75})).status_code == 422
