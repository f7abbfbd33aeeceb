"""Who sees what: customer keys only through the portal, one rights table for REST and GraphQL, and
project-manager keys bound to the contracts they manage (docs/api.md, docs/architecture.md "Who may see what")."""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path

import pytest

from app.access import GRANTS, ROLES, Right
from app.auth import create_client
from app.errors import ValidationFailed
from tests.factories import acme, auth, register

PORTAL = Path(__file__).resolve().parents[2] / "graphql" / "operations" / "portal" / "contract.graphql"
DOCUMENT_ID = "sha256:" + hashlib.sha256(PORTAL.read_bytes()).hexdigest()
NORTHWIND = {"external_id": "NORTHWIND-001", "name": "Northwind Traders"}
# Internal fields no customer may see, in any spelling.
INTERNAL = re.compile(r"last_?error|attempts|correlation_?id|cost|margin|exception", re.IGNORECASE)


def northwind(**changes: object) -> dict[str, object]:
    return acme(external_id="800XX0800", number="SOW-NW-1", customer=NORTHWIND, **changes)


async def _billed_contract(api, keys, run_jobs, body) -> str:
    """A contract with M1 accepted, billed and posted: every kind of row a customer might reach."""
    contract_id = (await register(api, keys["integration"], body)).json()["id"]
    accept = {"accepted_at": "2026-03-28T16:00:00Z", "accepted_by": "client PM"}
    accepted = await api.post(
        f"/process/v1/milestones/{contract_id}/M1/acceptance", json=accept, headers=auth(keys["integration"])
    )
    assert accepted.status_code == 200, accepted.text
    run = await api.post(
        "/process/v1/billing-runs",
        json={"as_of": "2026-03-31", "contract_id": contract_id},
        headers=auth(keys["finance"]),
    )
    assert run.status_code == 201, run.text
    await run_jobs()
    return contract_id


def _fill(path: str, ids: dict[str, str]) -> str:
    for name in re.findall(r"{(\w+)}", path):
        path = path.replace("{" + name + "}", ids.get(name, "X1"))
    return path


async def test_a_customer_key_is_refused_on_every_rest_route_even_for_its_own_data(api, keys, run_jobs, sandbox):
    contract_id = await _billed_contract(api, keys, run_jobs, acme())
    invoice = (await api.get("/process/v1/invoices", headers=auth(keys["finance"]))).json()["items"][0]
    ids = {"contract_id": contract_id, "invoice_id": invoice["id"], "key": "M1", "code": "US01"}
    ids |= {"external_id": "ACME-001", "exception_id": str(uuid.uuid4()), "group_key": "G"}
    spec = (await api.get("/openapi.json")).json()
    secured = [
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if "security" in operation
    ]
    assert len(secured) >= 18 and any(p.startswith("/system/v1/") for _, p in secured)
    for method, path in secured:
        body = {} if method in ("POST", "PUT") else None
        response = await api.request(method, _fill(path, ids), json=body, headers=auth(keys["customer"]))
        assert response.status_code == 403, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "FORBIDDEN"
        assert "/graphql" in response.json()["detail"]
    # ... and nothing a refused request could have done happened
    after = (await api.get(f"/process/v1/invoices/{invoice['id']}", headers=auth(keys["finance"]))).json()
    assert after["status"] == invoice["status"] == "posted"


async def test_the_portal_operation_shows_the_customer_its_own_contract_and_no_internal_field(
    api, keys, run_jobs, sandbox
):
    own = await _billed_contract(api, keys, run_jobs, acme())
    other = await _billed_contract(api, keys, run_jobs, northwind())

    response = await api.post(
        "/graphql", headers=auth(keys["customer"]), json={"documentId": DOCUMENT_ID, "variables": {"id": own}}
    )
    assert response.status_code == 200 and "errors" not in response.json(), response.text
    contract = response.json()["data"]["contract"]
    assert contract["number"] == "SOW-2026-014"
    assert contract["billedAmount"] == "100000.00" and contract["unbilledAmount"] == "0.00"
    assert [(m["key"], m["status"]) for m in contract["milestones"]] == [
        ("M1", "invoiced"),
        ("M2", "pending"),
        ("M3", "pending"),
    ]
    assert [(i["status"], i["total"]) for i in contract["invoices"]] == [("posted", "108875.00")]
    assert not INTERNAL.search(response.text), response.text

    theirs = await api.post(
        "/graphql", headers=auth(keys["customer"]), json={"documentId": DOCUMENT_ID, "variables": {"id": other}}
    )
    assert theirs.status_code == 200 and theirs.json() == {"data": {"contract": None}}


@pytest.mark.parametrize("role", [r for r in ROLES if r != "customer"])
async def test_a_role_reads_the_same_things_through_rest_and_graphql(api, keys, run_jobs, sandbox, role):
    await _billed_contract(api, keys, run_jobs, acme())
    may_bill = Right.READ_BILLING in GRANTS[role]
    may_read = Right.READ_CONTRACTS in GRANTS[role]

    rest = await api.get("/process/v1/invoices", headers=auth(keys[role]))
    assert rest.status_code == (200 if may_bill else 403), rest.text
    rest_contracts = await api.get("/process/v1/contracts", headers=auth(keys[role]))
    assert rest_contracts.status_code == (200 if may_read else 403)

    query = "{ contracts { number milestones { key } invoices { id status } billedAmount } }"
    graphql = (await api.post("/graphql", json={"query": query}, headers=auth(keys[role]))).json()
    codes = {e["extensions"]["code"] for e in graphql.get("errors", [])}
    if may_bill:
        assert not codes and graphql["data"]["contracts"][0]["invoices"][0]["status"] == "posted"
    else:
        assert codes == {"FORBIDDEN"}, graphql
        assert "posted" not in str(graphql["data"])


async def test_a_project_manager_key_sees_only_the_contracts_it_manages(api, keys, services, run_jobs, sandbox):
    mine = await _billed_contract(api, keys, run_jobs, acme())
    theirs = await _billed_contract(api, keys, run_jobs, northwind())
    blocked = acme(external_id="800XX0900", number="SOW-X", customer={"external_id": "NOBODY-9", "name": "Nobody"})
    blocked_id = (await register(api, keys["integration"], blocked)).json()["id"]
    async with services.db.transaction() as conn:
        _, by_contract = await create_client(conn, "pm-acme", "project_manager", contracts=[uuid.UUID(mine)])
        _, by_customer = await create_client(conn, "pm-nw", "project_manager", customers=["NORTHWIND-001"])
    everyone = keys["project_manager"]  # bound to nothing: every contract

    async def visible(key: str, path: str) -> list[str]:
        response = await api.get(path, headers=auth(key))
        assert response.status_code == 200, response.text
        return sorted(item["contract_id" if "invoices" in path else "id"] for item in response.json()["items"])

    assert await visible(by_contract, "/process/v1/contracts") == [mine]
    assert await visible(by_customer, "/process/v1/contracts") == [theirs]
    assert await visible(everyone, "/process/v1/contracts") == sorted([mine, theirs, blocked_id])
    assert await visible(by_contract, "/process/v1/invoices") == [mine]
    assert await visible(by_customer, "/process/v1/invoices") == [theirs]

    for path in (f"/process/v1/contracts/{theirs}", f"/process/v1/contracts/{blocked_id}"):
        response = await api.get(path, headers=auth(by_contract))
        assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"
    their_invoice = (await api.get("/process/v1/invoices", headers=auth(by_customer))).json()["items"][0]["id"]
    assert (await api.get(f"/process/v1/invoices/{their_invoice}", headers=auth(by_contract))).status_code == 404

    # work queues too: the blocked contract's exceptions belong to nobody this key manages
    exceptions = await api.get("/process/v1/exceptions", headers=auth(by_contract))
    assert exceptions.status_code == 200 and exceptions.json()["items"] == []
    all_open = (await api.get("/process/v1/exceptions", headers=auth(everyone))).json()["items"]
    assert {e["contract_id"] for e in all_open} == {blocked_id}
    hidden = await api.get(f"/process/v1/exceptions/{all_open[0]['id']}", headers=auth(by_contract))
    assert hidden.status_code == 404
    retry = await api.post(f"/process/v1/exceptions/{all_open[0]['id']}/retry", headers=auth(by_contract))
    assert retry.status_code == 404

    # writes are scoped like reads: accepting a milestone of a contract it does not manage
    accept = {"accepted_at": "2026-04-28T16:00:00Z"}
    outside = await api.post(f"/process/v1/milestones/{theirs}/M2/acceptance", json=accept, headers=auth(by_contract))
    assert outside.status_code == 404
    inside = await api.post(f"/process/v1/milestones/{mine}/M2/acceptance", json=accept, headers=auth(by_contract))
    assert inside.status_code == 200, inside.text

    query = "{ contracts { id } }"
    graphql = (await api.post("/graphql", json={"query": query}, headers=auth(by_customer))).json()
    assert graphql == {"data": {"contracts": [{"id": theirs}]}}
    one = {"query": "query($id: ID!) { contract(id: $id) { id } }", "variables": {"id": mine}}
    assert (await api.post("/graphql", json=one, headers=auth(by_customer))).json() == {"data": {"contract": None}}


async def test_keys_are_bound_only_to_customers_and_contracts_psbridge_knows(api, keys, services):
    contract_id = uuid.UUID((await register(api, keys["integration"], acme())).json()["id"])
    async with services.db.transaction() as conn:
        principal, _ = await create_client(conn, "pm", "project_manager", contracts=[contract_id])
        assert principal.contracts == (contract_id,) and principal.restricted
        crm, _ = await create_client(conn, "crm", "integration", system="crm")
        assert crm.system == "crm" and not crm.restricted
    refused = [
        ("customer", {"customers": ["NOT-A-CUSTOMER"]}, "does not know customer"),
        ("customer", {}, "exactly one customer"),
        ("customer", {"customers": ["ACME-001", "NORTHWIND-001"]}, "exactly one customer"),
        ("project_manager", {"contracts": [uuid.uuid4()]}, "does not exist"),
        ("finance", {"customers": ["ACME-001"]}, "only customer and project_manager"),
        ("bi", {"contracts": [contract_id]}, "only project_manager"),
        ("finance", {"system": "erp"}, "only integration keys"),
        ("integration", {"system": "sap"}, "only integration keys"),
        ("superuser", {}, "must be one of"),
    ]
    for role, binding, message in refused:
        with pytest.raises(ValidationFailed) as failed:
            async with services.db.transaction() as conn:
                await create_client(conn, "x", role, **binding)  # type: ignore[arg-type]
        assert message in failed.value.detail, (role, binding, failed.value.detail)
    async with services.db.connection() as conn:
        assert await conn.fetchval("select count(*) from api_client where name = 'x'") == 0


async def test_the_database_refuses_an_unbound_customer_key(services):
    # The rule holds below the code too: a customer key bound to nothing would see nothing, or worse.
    async with services.db.connection() as conn:
        with pytest.raises(Exception, match="api_client_scope_ck"):
            await conn.execute(
                """insert into api_client (id, name, role, key_prefix, key_hash)
                   values ($1, 'bad', 'customer', 'psb_x', 'h')""",
                uuid.uuid4(),
            )
