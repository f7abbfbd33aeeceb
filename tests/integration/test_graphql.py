"""The experience layer: role scoping enforced where data is read, persisted operations, limits."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.factories import acme, auth, register

PORTAL = Path(__file__).resolve().parents[2] / "graphql" / "operations" / "portal" / "contract.graphql"
DOCUMENT_ID = "sha256:" + hashlib.sha256(PORTAL.read_bytes()).hexdigest()


async def test_customer_runs_only_persisted_operations_and_sees_only_its_own(api, keys):
    acme_id = (await register(api, keys["integration"], acme())).json()["id"]
    other = acme(external_id="800XX0800", number="SOW-NW-1", customer={"external_id": "NORTHWIND-001", "name": "NW"})
    other_id = (await register(api, keys["integration"], other)).json()["id"]

    free_text = await api.post("/graphql", headers=auth(keys["customer"]), json={"query": "{ viewer { role } }"})
    assert free_text.status_code == 403 and free_text.headers["content-type"] == "application/problem+json"

    own = await api.post(
        "/graphql", headers=auth(keys["customer"]), json={"documentId": DOCUMENT_ID, "variables": {"id": acme_id}}
    )
    contract = own.json()["data"]["contract"]
    assert contract["number"] == "SOW-2026-014" and [m["key"] for m in contract["milestones"]] == ["M1", "M2", "M3"]

    by_text = await api.post(
        "/graphql", headers=auth(keys["customer"]), json={"query": PORTAL.read_text(), "variables": {"id": other_id}}
    )
    assert by_text.status_code == 200 and by_text.json()["data"]["contract"] is None

    unknown = await api.post("/graphql", headers=auth(keys["customer"]), json={"documentId": "sha256:00"})
    assert unknown.status_code == 403


async def test_staff_list_contracts_with_money_in_one_request(api, keys):
    await register(api, keys["integration"], acme())
    response = await api.post(
        "/graphql",
        headers=auth(keys["finance"]),
        json={
            "query": "{ viewer { role } contracts(first: 10) { number billedAmount unbilledAmount heldAmount "
            "milestones { key status } } }"
        },
    )
    data = response.json()["data"]
    assert data["viewer"] == {"role": "finance"}
    assert data["contracts"] == [
        {
            "number": "SOW-2026-014",
            "billedAmount": "0.00",
            "unbilledAmount": "0.00",
            "heldAmount": "0.00",
            "milestones": [
                {"key": "M1", "status": "pending"},
                {"key": "M2", "status": "pending"},
                {"key": "M3", "status": "pending"},
            ],
        }
    ]


async def test_alias_and_token_limits(api, keys):
    aliases = " ".join(f"a{i}: viewer {{ role }}" for i in range(21))
    too_many = await api.post("/graphql", headers=auth(keys["finance"]), json={"query": "{ " + aliases + " }"})
    assert too_many.json()["errors"] and too_many.json()["data"] is None
    long_query = "{ " + " ".join("viewer { role name }" for _ in range(600)) + " }"
    too_long = await api.post("/graphql", headers=auth(keys["finance"]), json={"query": long_query})
    assert too_long.json()["errors"]


async def test_bad_graphql_input_is_a_problem_not_a_500(api, keys):
    bad_json = await api.post(
        "/graphql", headers={**auth(keys["finance"]), "content-type": "application/json"}, content=b"{nope"
    )
    assert bad_json.status_code == 422 and bad_json.headers["content-type"] == "application/problem+json"
    no_query = await api.post("/graphql", headers=auth(keys["finance"]), json={"variables": {}})
    assert no_query.status_code == 422
    syntax = await api.post("/graphql", headers=auth(keys["finance"]), json={"query": "{ viewer { "})
    assert syntax.status_code == 200 and syntax.json()["errors"]


async def test_introspection_is_off_in_production(settings, sandbox_transport, services, keys):
    import httpx
    from asgi_lifespan import LifespanManager

    from app.main import create_app

    production = settings.model_copy(update={"env": "production"})
    app = create_app(production, sandbox_transport)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://psbridge") as client:
            response = await client.post(
                "/graphql", headers=auth(keys["admin"]), json={"query": "{ __schema { types { name } } }"}
            )
    assert response.json()["errors"] and not response.json()["data"]
