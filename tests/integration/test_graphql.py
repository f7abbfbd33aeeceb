"""The experience layer: role scoping enforced where data is read, persisted operations, limits."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

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
    # Refused before execution: 400 problem+json, GraphQL errors and no data (see experience_apis/graphql_errors.py).
    assert too_many.status_code == 400 and too_many.headers["content-type"] == "application/problem+json"
    assert too_many.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_LIMIT_EXCEEDED"
    assert "data" not in too_many.json()
    long_query = "{ " + " ".join("viewer { role name }" for _ in range(600)) + " }"
    too_long = await api.post("/graphql", headers=auth(keys["finance"]), json={"query": long_query})
    assert too_long.status_code == 400 and too_long.json()["code"] == "GRAPHQL_LIMIT_EXCEEDED"


async def test_bad_graphql_input_is_a_problem_not_a_500(api, keys):
    bad_json = await api.post(
        "/graphql", headers={**auth(keys["finance"]), "content-type": "application/json"}, content=b"{nope"
    )
    assert bad_json.status_code == 422 and bad_json.headers["content-type"] == "application/problem+json"
    no_query = await api.post("/graphql", headers=auth(keys["finance"]), json={"variables": {}})
    assert no_query.status_code == 422
    syntax = await api.post("/graphql", headers=auth(keys["finance"]), json={"query": "{ viewer { "})
    assert syntax.status_code == 400 and syntax.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


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
    assert response.status_code == 400 and response.json()["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "data" not in response.json()


async def test_graphiql_reads_the_schema_from_an_introspection_result_not_a_deep_query(api, keys):
    page = await api.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and 'data-schema-url="/graphql/schema.json"' in page.text
    schema = await api.get("/graphql/schema.json")  # public, like the page (the SDL is in the repository too)
    assert schema.status_code == 200
    types = {t["name"] for t in schema.json()["data"]["__schema"]["types"]}
    assert {"Contract", "Invoice", "Milestone", "Viewer", "ContractStatus"} <= types
    # GraphiQL's own introspection query would be refused: introspection fields count towards the depth limit
    deep = "{ __schema { types { fields { type " + "{ ofType " * 6 + "{ name }" + " }" * 6 + " } } } }"
    refused = await api.post("/graphql", json={"query": deep}, headers=auth(keys["finance"]))
    assert refused.status_code == 400 and refused.json()["code"] == "GRAPHQL_LIMIT_EXCEEDED"


async def test_the_schema_for_graphiql_is_off_in_production(settings, sandbox_transport, services, keys):
    from asgi_lifespan import LifespanManager

    from app.main import create_app

    app = create_app(settings.model_copy(update={"env": "production"}), sandbox_transport)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://psbridge") as client:
            response = await client.get("/graphql/schema.json")
    assert response.status_code == 404 and response.headers["content-type"] == "application/problem+json"


async def test_contracts_filters_are_typed_and_a_foreign_cursor_is_the_clients_mistake(api, keys):
    await register(api, keys["integration"], acme())
    finance = auth(keys["finance"])
    active = await api.post("/graphql", json={"query": "{ contracts(status: active) { number } }"}, headers=finance)
    assert active.json() == {"data": {"contracts": [{"number": "SOW-2026-014"}]}}
    unknown = await api.post("/graphql", json={"query": '{ contracts(status: "x") { number } }'}, headers=finance)
    assert unknown.status_code == 400 and unknown.json()["code"] == "GRAPHQL_VALIDATION_FAILED"
    for cursor in ("not-ours", "a.b|c", "%%%"):
        query = {"query": "query($a: String) { contracts(after: $a) { number } }", "variables": {"a": cursor}}
        answer = (await api.post("/graphql", json=query, headers=finance)).json()
        assert answer["data"] is None and answer["errors"][0]["extensions"]["code"] == "INVALID_CURSOR", answer


async def test_staff_may_run_persisted_operations_by_document_id(api, keys):
    contract_id = (await register(api, keys["integration"], acme())).json()["id"]
    by_id = {"documentId": DOCUMENT_ID, "variables": {"id": contract_id}}
    answer = await api.post("/graphql", json=by_id, headers=auth(keys["finance"]))
    assert answer.status_code == 200 and answer.json()["data"]["contract"]["number"] == "SOW-2026-014"
    unknown = await api.post("/graphql", json={"documentId": "sha256:00"}, headers=auth(keys["finance"]))
    assert unknown.status_code == 422 and unknown.json()["code"] == "UNKNOWN_DOCUMENT"
