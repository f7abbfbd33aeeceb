"""POST /system/v1/crm/salesforce/events: Salesforce's contract, mapped as data, taken like the canonical one."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from app.auth import create_client
from app.bootstrap import Services
from app.canonical.contract import ACME_EXAMPLE
from app.main import create_app
from app.settings import Settings
from system_apis.crm.mapping import MAPPINGS_DIR, VendorMappings
from tests.factories import auth
from tests.salesforce import amendment_event, encode, salesforce_event

EVENTS = "/system/v1/crm/salesforce/events"
PROBLEM = "application/problem+json"


@pytest.fixture
async def app_and_api(
    settings: Settings, sandbox_transport: httpx.ASGITransport, services: Services, sandbox: httpx.AsyncClient
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """The app with its client: a test fixes the mapping by giving the running app another one."""
    app = create_app(settings, sandbox_transport)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://psbridge") as client:
            yield app, client


@pytest.fixture
async def system_keys(services: Services, keys: dict[str, str]) -> dict[str, str]:
    """Integration keys that speak for one system each (field ownership), plus the role keys."""
    out = dict(keys)
    async with services.db.transaction() as conn:
        _, out["crm"] = await create_client(conn, "salesforce-webhook", "integration", system="crm")
        _, out["psa"] = await create_client(conn, "kantata", "integration", system="psa")
    return out


async def send(api: httpx.AsyncClient, key: str, event: Any) -> httpx.Response:
    body = event if isinstance(event, bytes) else encode(event)
    return await api.post(EVENTS, content=body, headers={**auth(key), "Content-Type": "application/json"})


async def inbound_events(services: Services) -> list[dict[str, Any]]:
    async with services.db.connection() as conn:
        rows = await conn.fetch(
            """select id, vendor, subject, body, status, errors, contract_id, version, received_by
               from inbound_event order by received_at, id"""
        )
    return [dict(r) for r in rows]


async def mapping_failures(api: httpx.AsyncClient, key: str) -> float:
    response = await api.get("/metrics", headers=auth(key))
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "psbridge_mapping_failures_total" and sample.labels == {"vendor": "salesforce"}:
                return sample.value
    raise AssertionError("psbridge_mapping_failures_total{vendor=salesforce} is not exported")


def comparable(detail: dict[str, Any]) -> dict[str, Any]:
    """A contract as GET shows it, without what differs between two registrations of the same terms."""
    out = copy.deepcopy(detail)
    for name in ("id", "source", "external_id", "created_at", "updated_at"):
        out.pop(name)
    for version in out["versions"]:
        version.pop("created_at")
    return out


# --- the example ------------------------------------------------------------------------------------


async def test_the_salesforce_example_stores_the_same_contract_as_the_canonical_post(api, system_keys, services):
    taken = await send(api, system_keys["crm"], salesforce_event())
    assert taken.status_code == 201, taken.text
    answer = taken.json()
    assert answer["status"] == "active" and answer["version"] == 1 and answer["exceptions"] == []
    assert taken.headers["location"] == f"/process/v1/contracts/{answer['id']}"

    # The same terms sent canonically (signed_at is CustomerSignedDate at midnight UTC); another
    # external id, since (source, external_id) names one contract.
    canonical = {**ACME_EXAMPLE, "external_id": "800XX0002", "signed_at": "2026-01-02T00:00:00Z"}
    posted = await api.post("/process/v1/contracts", json=canonical, headers=auth(system_keys["integration"]))
    assert posted.status_code == 201, posted.text

    admin = auth(system_keys["admin"])
    mapped = (await api.get(f"/process/v1/contracts/{answer['id']}", headers=admin)).json()
    direct = (await api.get(f"/process/v1/contracts/{posted.json()['id']}", headers=admin)).json()
    assert mapped["external_id"] == "800XX0001" and mapped["source"] == "salesforce"
    assert comparable(mapped) == comparable(direct)
    assert [m["amount"] for m in mapped["milestones"]] == ["100000.00", "120000.00", "80000.00"]

    async with services.db.connection() as conn:
        payloads = {
            r["contract_id"]: r["payload"]
            for r in await conn.fetch("select contract_id, payload from contract_version where version = 1")
        }
    stored = payloads[uuid.UUID(answer["id"])]
    assert stored == {**payloads[uuid.UUID(posted.json()["id"])], "external_id": "800XX0001"}
    assert stored["total_value"] == "300000.00" and stored["rate_card"][0]["rate"] == "200.00"

    [event] = await inbound_events(services)
    assert event["status"] == "mapped" and event["subject"] == "800XX0001" and event["errors"] == []
    assert event["contract_id"] == uuid.UUID(answer["id"]) and event["version"] == 1
    assert event["body"] == encode(salesforce_event())  # kept byte for byte


async def test_the_same_event_twice_is_201_then_200(api, system_keys, services):
    first = await send(api, system_keys["crm"], salesforce_event())
    again = await send(api, system_keys["crm"], salesforce_event())
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert [e["status"] for e in await inbound_events(services)] == ["mapped", "mapped"]  # each delivery kept


# --- who may send ----------------------------------------------------------------------------------


async def test_a_psa_key_may_not_write_crm_fields_and_nothing_is_stored(api, system_keys, services):
    for event in (salesforce_event(), b'{"Contract": "unmappable"}'):
        refused = await send(api, system_keys["psa"], event)
        assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
        assert refused.json()["code"] == "FIELD_NOT_OWNED"
    assert await inbound_events(services) == []
    listed = await api.get("/process/v1/contracts", headers=auth(system_keys["admin"]))
    assert listed.json()["items"] == []
    exceptions = await api.get("/process/v1/exceptions?code=MAPPING_FAILED", headers=auth(system_keys["admin"]))
    assert exceptions.json()["items"] == []


@pytest.mark.parametrize("key", ["admin", "crm", "integration"])
async def test_admin_and_crm_keys_may_send(api, system_keys, key):
    assert (await send(api, system_keys[key], salesforce_event())).status_code == 201


@pytest.mark.parametrize("key", ["finance", "bi", "project_manager", "customer"])
async def test_other_roles_may_not(api, system_keys, key):
    assert (await send(api, system_keys[key], salesforce_event())).status_code == 403


async def test_a_vendor_without_a_mapping_is_404_and_a_non_json_body_415(api, system_keys, services):
    json_headers = {**auth(system_keys["crm"]), "Content-Type": "application/json"}
    unknown = await api.post("/system/v1/crm/hubspot/events", content=b"{}", headers=json_headers)
    assert unknown.status_code == 404 and unknown.json()["code"] == "UNKNOWN_VENDOR"
    text = await api.post(EVENTS, content=b"{}", headers={**auth(system_keys["crm"]), "Content-Type": "text/plain"})
    assert text.status_code == 415
    assert await inbound_events(services) == []


async def test_the_route_is_rate_limited_per_client(settings, sandbox_transport, services, system_keys):
    limited = settings.model_copy(update={"default_rate_limit": "2/minute"})
    app = create_app(limited, sandbox_transport)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://psbridge") as api:
            statuses = [(await send(api, system_keys["crm"], salesforce_event())).status_code for _ in range(3)]
            assert statuses == [201, 200, 429]
            assert (await send(api, system_keys["admin"], salesforce_event())).status_code == 200  # its own budget


# --- what cannot be mapped --------------------------------------------------------------------------


def broken_event() -> dict[str, Any]:
    """The example with a billing model the mapping does not know and a line item priced as text."""
    event = salesforce_event(Billing_Model__c="Fixed Price")
    event["OpportunityLineItems"][1]["TotalPrice"] = "120,000.00"
    return event


async def test_an_unmappable_event_is_kept_counted_and_queued_with_salesforce_locations(api, system_keys, services):
    before = await mapping_failures(api, system_keys["admin"])
    refused = await send(api, system_keys["crm"], broken_event())
    assert refused.status_code == 422 and refused.headers["content-type"] == PROBLEM
    problem = refused.json()
    assert problem["code"] == "MAPPING_FAILED"
    assert [e["loc"] for e in problem["errors"]] == [
        ["body", "Contract", "Billing_Model__c"],
        ["body", "OpportunityLineItems", 1, "TotalPrice"],
    ]

    [event] = await inbound_events(services)
    assert str(event["id"]) == problem["event_id"] and event["status"] == "failed"
    assert event["body"] == encode(broken_event()) and event["subject"] == "800XX0001"
    assert [e["loc"] for e in event["errors"]] == [e["loc"] for e in problem["errors"]]

    crm = auth(system_keys["crm"])
    item = (await api.get(f"/process/v1/exceptions/{problem['exception_id']}", headers=crm)).json()
    assert item["code"] == "MAPPING_FAILED" and item["queue"] == "integration" and item["status"] == "open"
    assert item["subject"] == {"type": "inbound_event", "id": problem["event_id"]}
    assert item["group_key"] == "MAPPING_FAILED:salesforce" and item["actions"] == ["retry"]
    assert "Contract.Billing_Model__c" in item["detail"]
    queue = await api.get("/process/v1/exceptions?queue=integration&code=MAPPING_FAILED", headers=crm)
    assert [i["id"] for i in queue.json()["items"]] == [problem["exception_id"]]
    assert await mapping_failures(api, system_keys["admin"]) == before + 1

    listed = await api.get("/process/v1/contracts", headers=auth(system_keys["admin"]))
    assert listed.json()["items"] == []


def knows_fixed_price(text: str) -> str:
    """The mapping fix: the billing model's value map learns the name this org uses."""
    return text.replace('"Fixed Fee" = "fixed_fee"', '"Fixed Fee" = "fixed_fee", "Fixed Price" = "fixed_fee"')


def fixed_mappings(tmp_path: Path, edit: Any) -> VendorMappings:
    """The shipped mapping file with one edit, as an operator would deploy it."""
    text = (MAPPINGS_DIR / "salesforce.toml").read_text()
    (tmp_path / "salesforce.toml").write_text(edit(text))
    return VendorMappings.load(tmp_path)


async def test_retry_after_the_mapping_is_fixed_registers_the_contract_and_resolves(
    app_and_api, system_keys, services, tmp_path
):
    app, api = app_and_api
    event = salesforce_event(Billing_Model__c="Fixed Price")
    problem = (await send(api, system_keys["crm"], event)).json()
    retry = f"/process/v1/exceptions/{problem['exception_id']}/retry"

    # Nothing fixed yet: the retry maps it again, fails again, and counts it.
    still = await api.post(retry, headers=auth(system_keys["crm"]))
    assert still.status_code == 200 and still.json()["status"] == "open" and still.json()["count"] == 2

    app.state.services.intake.events = fixed_mappings(tmp_path, knows_fixed_price)
    retried = await api.post(retry, json={"note": "mapped Fixed Price"}, headers=auth(system_keys["crm"]))
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "resolved"

    [stored] = await inbound_events(services)
    assert stored["status"] == "mapped" and stored["errors"] == [] and stored["version"] == 1
    contract = (
        await api.get(f"/process/v1/contracts/{stored['contract_id']}", headers=auth(system_keys["admin"]))
    ).json()
    assert contract["status"] == "active" and contract["billing_model"] == "fixed_fee"
    assert contract["external_id"] == "800XX0001" and contract["total_value"] == "300000.00"


async def test_retry_after_a_value_map_names_the_legal_entity_takes_the_payload(
    app_and_api, system_keys, services, tmp_path
):
    app, api = app_and_api
    event = salesforce_event(Legal_Entity__c="Acme Consulting US, Inc.")
    problem = (await send(api, system_keys["crm"], event)).json()
    assert [e["loc"] for e in problem["errors"]] == [["body", "Contract", "Legal_Entity__c"]]

    app.state.services.intake.events = fixed_mappings(
        tmp_path,
        lambda text: text.replace(
            'legal_entity = "Contract.Legal_Entity__c"',
            'legal_entity = { from = "Contract.Legal_Entity__c", values = { "Acme Consulting US, Inc." = "US01" } }',
        ),
    )
    retried = await api.post(
        f"/process/v1/exceptions/{problem['exception_id']}/retry", headers=auth(system_keys["admin"])
    )
    assert retried.json()["status"] == "resolved"
    [stored] = await inbound_events(services)
    contract = (
        await api.get(f"/process/v1/contracts/{stored['contract_id']}", headers=auth(system_keys["admin"]))
    ).json()
    assert contract["legal_entity"] == "US01" and contract["status"] == "active"


async def test_a_group_retry_replays_every_failed_payload_of_the_vendor(app_and_api, system_keys, services, tmp_path):
    app, api = app_and_api
    first = (await send(api, system_keys["crm"], salesforce_event(Billing_Model__c="Fixed Price"))).json()
    other = salesforce_event(Id="800XX0003", ContractNumber="SOW-2026-015", Billing_Model__c="Fixed Price")
    second = (await send(api, system_keys["crm"], other)).json()

    app.state.services.intake.events = fixed_mappings(tmp_path, knows_fixed_price)
    group = await api.post(
        "/process/v1/exceptions/groups/MAPPING_FAILED:salesforce/retry", headers=auth(system_keys["crm"])
    )
    assert group.status_code == 200, group.text
    assert group.json()["retried"] == 2 and group.json()["resolved"] == 2
    assert {e["status"] for e in await inbound_events(services)} == {"mapped"}
    for problem in (first, second):
        item = await api.get(f"/process/v1/exceptions/{problem['exception_id']}", headers=auth(system_keys["crm"]))
        assert item.json()["status"] == "resolved"


async def test_a_later_good_payload_supersedes_the_failed_one(api, system_keys, services):
    problem = (await send(api, system_keys["crm"], broken_event())).json()
    taken = await send(api, system_keys["crm"], salesforce_event())
    assert taken.status_code == 201
    item = (await api.get(f"/process/v1/exceptions/{problem['exception_id']}", headers=auth(system_keys["crm"]))).json()
    assert item["status"] == "resolved"
    assert item["note"].startswith("superseded by event ") and taken.json()["id"] in item["note"]
    failed, mapped = await inbound_events(services)
    assert (failed["status"], mapped["status"]) == ("failed", "mapped")  # the failed payload stays as it came


async def test_a_payload_that_maps_but_is_refused_keeps_its_exception_open(
    app_and_api, system_keys, services, tmp_path
):
    app, api = app_and_api
    # Version 2 arrives (unmappable) before version 1 was ever sent.
    problem = (await send(api, system_keys["crm"], amendment_event(Billing_Model__c="Fixed Price"))).json()
    app.state.services.intake.events = fixed_mappings(tmp_path, knows_fixed_price)
    retry = f"/process/v1/exceptions/{problem['exception_id']}/retry"
    refused = await api.post(retry, headers=auth(system_keys["crm"]))
    assert refused.status_code == 200 and refused.json()["status"] == "open"
    assert "VERSION_CONFLICT" in refused.json()["detail"]
    [event] = await inbound_events(services)
    assert event["status"] == "rejected" and event["errors"][0]["code"] == "VERSION_CONFLICT"

    # Version 1 arrives: the retry now takes version 2 as its amendment.
    first = await send(api, system_keys["crm"], salesforce_event())
    assert first.status_code == 201
    retried = await api.post(retry, headers=auth(system_keys["crm"]))
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "resolved" and retried.json()["count"] == 2
    replayed = next(e for e in await inbound_events(services) if e["id"] == event["id"])
    assert replayed["status"] == "mapped" and replayed["version"] == 2
    assert str(replayed["contract_id"]) == first.json()["id"]
    contract = await api.get(f"/process/v1/contracts/{first.json()['id']}", headers=auth(system_keys["admin"]))
    assert contract.json()["version"] == 2


# --- amendments -------------------------------------------------------------------------------------


async def test_an_amendment_event_makes_version_2_of_the_same_contract(api, system_keys):
    created = await send(api, system_keys["crm"], salesforce_event())
    assert created.status_code == 201
    amended = await send(api, system_keys["crm"], amendment_event())
    assert amended.status_code == 201, amended.text
    answer = amended.json()
    assert answer["id"] == created.json()["id"] and answer["version"] == 2
    assert answer["effective_date"] == "2026-06-01"

    contract = (await api.get(f"/process/v1/contracts/{answer['id']}", headers=auth(system_keys["admin"]))).json()
    assert contract["version"] == 2 and contract["total_value"] == "360000.00"
    assert [(v["version"], v["effective_date"], v["reason"]) for v in contract["versions"]] == [
        (1, "2026-01-05", None),
        (2, "2026-06-01", "CO-7 scope extension"),
    ]
    assert [(m["key"], m["amount"], m["depends_on"]) for m in contract["milestones"]] == [
        ("M1", "100000.00", []),
        ("M2", "120000.00", ["M1"]),
        ("M3", "80000.00", ["M2"]),
        ("M4", "60000.00", ["M3"]),
    ]
    assert contract["reimbursable_expenses"] == [{"category": "travel", "cap": "20000.00"}]

    again = await send(api, system_keys["crm"], amendment_event())
    assert again.status_code == 200 and again.json()["version"] == 2


async def test_an_amendment_out_of_order_is_the_canonical_409(api, system_keys, services):
    await send(api, system_keys["crm"], salesforce_event())
    skipped = await send(api, system_keys["crm"], amendment_event(Version__c=3))
    assert skipped.status_code == 409 and skipped.json()["code"] == "VERSION_CONFLICT"
    events = await inbound_events(services)
    assert [e["status"] for e in events] == ["mapped", "rejected"]
    assert events[1]["errors"][0]["code"] == "VERSION_CONFLICT" and events[1]["version"] == 3
    assert events[1]["contract_id"] == events[0]["contract_id"]


# --- hostile input through the whole route ----------------------------------------------------------

WRONG = [None, True, 0, -1, 1.5, "", "\u0000", "\ud800", "9" * 400, "2026-02-30", [], {}]


async def test_wrong_values_anywhere_are_422_problems_never_5xx(api, system_keys):
    example = salesforce_event()
    paths = [("Contract", name) for name in example["Contract"]] + [
        (name, 0, field) for name in ("OpportunityLineItems", "Rate_Cards__r") for field in example[name][0]
    ]
    for path in paths:
        for wrong in WRONG:
            event = copy.deepcopy(example)
            target = event
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = wrong
            response = await send(api, system_keys["crm"], event)
            assert response.status_code < 500, (path, wrong, response.text[:300])
            if response.status_code >= 400:
                assert response.headers["content-type"] == PROBLEM, (path, wrong)
                if response.json()["code"] == "MAPPING_FAILED":  # at Salesforce's names, never canonical ones
                    roots = {e["loc"][1] for e in response.json()["errors"]}
                    assert roots <= {"Contract", "OpportunityLineItems", "Rate_Cards__r"}, (path, wrong, roots)
