"""Amendments through the API: version n+1, every rule in one 422, concurrency, the dry run,
propagation of every version, and field ownership. Amounts are the demo's change order CO-7."""

from __future__ import annotations

import asyncio
import copy
import uuid
from datetime import date
from typing import Any

from app.access import Principal
from app.auth import create_client
from app.canonical.contract import ACME_CHANGE_ORDER, ContractIn
from app.canonical.intake import ContractState
from tests.factories import LUMIERE, acme, auth, register


def change_order(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(ACME_CHANGE_ORDER)
    body["changes"].update(changes)  # type: ignore[union-attr]
    return body


def amendments(contract_id: str) -> str:
    return f"/process/v1/contracts/{contract_id}/amendments"


async def active_acme(api, keys, run_jobs) -> str:  # noqa: ANN001
    response = await register(api, keys["integration"], acme())
    assert response.status_code == 201 and response.json()["status"] == "active", response.text
    await run_jobs()
    return str(response.json()["id"])


async def accept(api, keys, contract_id: str, key: str, at: str = "2026-03-28T16:00:00Z") -> None:  # noqa: ANN001
    response = await api.post(
        f"/process/v1/milestones/{contract_id}/{key}/acceptance",
        json={"accepted_at": at, "accepted_by": "client PM"},
        headers=auth(keys["integration"]),
    )
    assert response.status_code == 200, response.text


async def contract(api, keys, contract_id: str) -> dict[str, Any]:  # noqa: ANN001
    response = await api.get(f"/process/v1/contracts/{contract_id}", headers=auth(keys["finance"]))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_the_change_order_is_version_2_propagated_to_psa_and_erp(api, keys, run_jobs, sandbox, services):
    contract_id = await active_acme(api, keys, run_jobs)
    response = await api.post(
        amendments(contract_id),
        json=ACME_CHANGE_ORDER,
        headers={**auth(keys["integration"]), "X-Correlation-ID": "co-7-webhook"},
    )
    assert response.status_code == 201, response.text
    applied = response.json()
    assert applied["id"] == contract_id and applied["version"] == 2 and applied["status"] == "active"
    assert applied["effective_date"] == "2026-06-01"
    assert applied["propagation"]["psa"]["status"] == applied["propagation"]["erp"]["status"] == "pending"

    await run_jobs()

    body = await contract(api, keys, contract_id)
    assert body["version"] == 2 and body["total_value"] == "360000.00"
    assert [(v["version"], v["effective_date"]) for v in body["versions"]] == [(1, "2026-01-05"), (2, "2026-06-01")]
    v2 = body["versions"][1]
    assert v2["reason"] == "CO-7 scope extension" and v2["total_value"] == "360000.00"
    for target in ("psa", "erp"):
        assert v2["propagation"][target]["status"] == "confirmed"
        assert v2["propagation"][target]["confirmed_version"] == 2
        assert body["propagation"][target]["status"] == "confirmed"
    assert [(m["key"], m["amount"], m["depends_on"], m["status"]) for m in body["milestones"]] == [
        ("M1", "100000.00", [], "pending"),
        ("M2", "120000.00", ["M1"], "pending"),
        ("M3", "80000.00", ["M2"], "pending"),
        ("M4", "60000.00", ["M3"], "pending"),
    ]
    assert body["reimbursable_expenses"] == [{"category": "travel", "cap": "20000.00"}]

    # The sandbox holds what psbridge pushed: version 2's plan, in the PSA and in the ERP.
    project = (await sandbox.get(f"/psa/projects/{body['project_id']}")).json()
    assert project["budget"] == "360000.00"
    assert [(m["key"], m["amount"], m["depends_on"]) for m in project["milestones"]] == [
        ("M1", "100000.00", []),
        ("M2", "120000.00", ["M1"]),
        ("M3", "80000.00", ["M2"]),
        ("M4", "60000.00", ["M3"]),
    ]
    job = (await sandbox.get(f"/erp/services/rest/record/v1/job/eid:{contract_id}")).json()
    assert job["planVersion"] == 2 and job["budget"] == "360000.00"
    assert [(m["milestone"], m["amount"], m["dueDate"]) for m in job["billingSchedule"]][-1] == (
        "M4",
        "60000.00",
        "2026-11-30",
    )

    async with services.db.connection() as conn:
        events = await conn.fetch(
            "select event_type, payload, correlation_id from outbox_event where subject_id = $1 order by id",
            contract_id,
        )
    amended = [e for e in events if e["event_type"] == "contract.amended"]
    assert len(amended) == 1 and amended[0]["correlation_id"] == "co-7-webhook"
    assert amended[0]["payload"]["milestones"] == {"added": ["M4"], "changed": [], "removed": []}
    confirmed = {
        (e["payload"]["version"], e["payload"]["target"]) for e in events if e["event_type"] == "propagation.confirmed"
    }
    assert confirmed == {(1, "psa"), (1, "erp"), (2, "psa"), (2, "erp")}
    assert events[0]["event_type"] == "contract.activated"


async def test_every_failing_rule_is_reported_in_one_422_and_nothing_changes(api, keys, run_jobs):
    contract_id = await active_acme(api, keys, run_jobs)
    await accept(api, keys, contract_id, "M1")
    body = {
        "version": 2,
        "effective_date": "2025-12-01",  # before the start
        "changes": {
            "end_date": "2026-11-30",  # shortens the term
            "add_milestones": [{"key": "M1", "name": "Again", "amount": "1.00"}],
            "update_milestones": [{"key": "M9", "name": "Nobody"}, {"key": "M1", "amount": "90000.00"}],
            "total_value": "310000.00",
        },
    }
    response = await api.post(amendments(contract_id), json=body, headers=auth(keys["integration"]))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    codes = [e["code"] for e in problem["errors"]]
    assert codes == [
        "INVALID_EFFECTIVE_DATE",
        "INVALID_END_DATE",
        "UNKNOWN_MILESTONE",
        "DUPLICATE_MILESTONE",
        "MILESTONE_ACCEPTED",
        "MILESTONES_DO_NOT_SUM",
    ]
    assert problem["code"] == "INVALID_EFFECTIVE_DATE"
    locs = {e["code"]: e["loc"] for e in problem["errors"]}
    assert locs["UNKNOWN_MILESTONE"] == ["body", "changes", "update_milestones", 0, "key"]
    assert locs["INVALID_END_DATE"] == ["body", "changes", "end_date"]
    assert (await contract(api, keys, contract_id))["version"] == 1


async def test_removing_or_repricing_an_accepted_milestone_is_refused_but_renaming_it_is_not(api, keys, run_jobs):
    contract_id = await active_acme(api, keys, run_jobs)
    await accept(api, keys, contract_id, "M1")
    removed = await api.post(
        amendments(contract_id),
        json={"version": 2, "effective_date": "2026-06-01", "changes": {"remove_milestones": ["M1"]}},
        headers=auth(keys["integration"]),
    )
    assert removed.status_code == 422
    assert [e["code"] for e in removed.json()["errors"]] == [
        "UNKNOWN_MILESTONE",
        "MILESTONE_ACCEPTED",
        "MILESTONES_DO_NOT_SUM",
    ]
    renamed = await api.post(
        amendments(contract_id),
        json={
            "version": 2,
            "effective_date": "2026-06-01",
            "changes": {"update_milestones": [{"key": "M1", "name": "Discovery (signed off)", "amount": "100000"}]},
        },
        headers=auth(keys["integration"]),
    )
    assert renamed.status_code == 201, renamed.text
    milestones = (await contract(api, keys, contract_id))["milestones"]
    assert milestones[0]["name"] == "Discovery (signed off)" and milestones[0]["status"] == "accepted"


async def test_four_concurrent_version_2_bodies_one_wins_and_its_resend_is_200(api, keys, run_jobs):
    contract_id = await active_acme(api, keys, run_jobs)
    bodies = [change_order(reimbursable_expenses=[{"category": "travel", "cap": f"{20000 + i}.00"}]) for i in range(4)]
    responses = await asyncio.gather(
        *(api.post(amendments(contract_id), json=b, headers=auth(keys["integration"])) for b in bodies)
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409], [r.text for r in responses]
    assert all(r.json()["code"] == "VERSION_CONFLICT" for r in responses if r.status_code == 409)
    winner = bodies[[r.status_code for r in responses].index(201)]
    loser = bodies[[r.status_code for r in responses].index(409)]
    again = await api.post(amendments(contract_id), json=winner, headers=auth(keys["integration"]))
    assert again.status_code == 200 and again.json()["version"] == 2
    assert (await api.post(amendments(contract_id), json=loser, headers=auth(keys["integration"]))).status_code == 409
    cap = (await contract(api, keys, contract_id))["reimbursable_expenses"][0]["cap"]
    assert cap == winner["changes"]["reimbursable_expenses"][0]["cap"]


async def test_only_the_next_version_applies_and_a_blocked_contract_cannot_be_amended(api, keys, run_jobs):
    contract_id = await active_acme(api, keys, run_jobs)
    skipped = await api.post(
        amendments(contract_id), json={**ACME_CHANGE_ORDER, "version": 3}, headers=auth(keys["integration"])
    )
    assert skipped.status_code == 409 and skipped.json()["code"] == "VERSION_CONFLICT"
    blocked = await register(
        api, keys["integration"], acme(external_id="800XX0077", customer={"external_id": "NOBODY", "name": "N"})
    )
    assert blocked.json()["status"] == "blocked"
    refused = await api.post(
        amendments(blocked.json()["id"]), json=ACME_CHANGE_ORDER, headers=auth(keys["integration"])
    )
    assert refused.status_code == 409 and refused.json()["code"] == "CONTRACT_BLOCKED"
    unknown = await api.post(amendments(str(uuid.uuid4())), json=ACME_CHANGE_ORDER, headers=auth(keys["integration"]))
    assert unknown.status_code == 404


async def _footprint(services) -> dict[str, int]:  # noqa: ANN001
    async with services.db.connection() as conn:
        counts = {
            table: await conn.fetchval(f"select count(*) from {table}")  # noqa: S608 - fixed table names
            for table in (
                "contract_version",
                "milestone",
                "rate_card_entry",
                "expense_category",
                "propagation",
                "outbox_event",
                "audit_record",
                "billing_transaction",
                "exception",
            )
        }
        counts["current_version"] = await conn.fetchval("select max(current_version) from contract")
    counts["jobs"] = await services.queue.depth()
    return counts


async def test_a_dry_run_shows_the_impact_and_writes_nothing(api, keys, run_jobs, services):
    contract_id = await active_acme(api, keys, run_jobs)
    await accept(api, keys, contract_id, "M1")
    before = await _footprint(services)
    headers = {**auth(keys["integration"]), "Idempotency-Key": "preview-co-7"}
    response = await api.post(amendments(contract_id) + "?dry_run=true", json=ACME_CHANGE_ORDER, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "dry_run": True,
        "id": contract_id,
        "version": 2,
        "effective_date": "2026-06-01",
        "total_value": {"before": "300000.00", "after": "360000.00"},
        "repriced": [],
        "released": [],
        "milestones": {"added": ["M4"], "changed": [], "removed": []},
        "unbilled": {"before": "100000.00", "after": "100000.00"},  # M1's accepted fee, not re-priced
        "held": {"before": "0.00", "after": "0.00"},
    }
    assert await _footprint(services) == before
    # The replay store is not business data: the key is kept, and the same request replays.
    replayed = await api.post(amendments(contract_id) + "?dry_run=true", json=ACME_CHANGE_ORDER, headers=headers)
    assert replayed.headers.get("Idempotent-Replayed") == "true" and replayed.json() == response.json()
    # The preview did not use up version 2: the real amendment still applies.
    applied = await api.post(amendments(contract_id), json=ACME_CHANGE_ORDER, headers=auth(keys["integration"]))
    assert applied.status_code == 201


async def test_a_dry_run_reports_the_same_errors_as_the_real_amendment(api, keys, run_jobs):
    contract_id = await active_acme(api, keys, run_jobs)
    bad = change_order(total_value="350000.00")
    preview = await api.post(amendments(contract_id) + "?dry_run=true", json=bad, headers=auth(keys["integration"]))
    real = await api.post(amendments(contract_id), json=bad, headers=auth(keys["integration"]))
    assert preview.status_code == real.status_code == 422
    assert preview.json()["errors"] == real.json()["errors"]
    assert preview.json()["code"] == "MILESTONES_DO_NOT_SUM"


async def test_rates_merge_by_role_from_the_effective_date_and_a_null_time_cap_removes_the_cap(api, keys, run_jobs):
    body = acme(
        external_id="800XX0100",
        billing_model="time_and_materials",
        total_value=None,
        milestones=[],
        time_cap="50000.00",
        rate_card=[
            {"role": "consultant", "rate": "200.00", "effective_from": "2026-01-05"},
            {"role": "architect", "rate": "300.00", "effective_from": "2026-01-05"},
        ],
    )
    response = await register(api, keys["integration"], body)
    assert response.status_code == 201, response.text
    contract_id = response.json()["id"]
    raise_rate = {
        "version": 2,
        "effective_date": "2026-06-01",
        "changes": {"rate_card": [{"role": "consultant", "rate": "220.00", "effective_from": "2026-05-01"}]},
    }
    assert (
        await api.post(amendments(contract_id), json=raise_rate, headers=auth(keys["integration"]))
    ).status_code == 201
    detail = await contract(api, keys, contract_id)
    assert detail["time_cap"] == "50000.00"  # absent: unchanged
    assert [(r["role"], r["rate"], r["effective_from"], r["version"]) for r in detail["rate_card"]] == [
        ("architect", "300.00", "2026-01-05", 1),
        ("consultant", "200.00", "2026-01-05", 1),
        ("consultant", "220.00", "2026-06-01", 2),  # asked from May, applies from the amendment's date
    ]
    uncap = {"version": 3, "effective_date": "2026-07-01", "changes": {"time_cap": None}}
    assert (await api.post(amendments(contract_id), json=uncap, headers=auth(keys["integration"]))).status_code == 201
    assert (await contract(api, keys, contract_id))["time_cap"] is None


async def test_two_versions_pushed_in_any_order_leave_the_targets_on_the_newest(api, keys, run_jobs, sandbox):
    contract_id = await active_acme(api, keys, run_jobs)
    assert (
        await api.post(amendments(contract_id), json=ACME_CHANGE_ORDER, headers=auth(keys["integration"]))
    ).status_code == 201
    v3 = {"version": 3, "effective_date": "2026-07-01", "changes": {"end_date": "2026-12-31"}}
    assert (await api.post(amendments(contract_id), json=v3, headers=auth(keys["integration"]))).status_code == 201
    await run_jobs()
    detail = await contract(api, keys, contract_id)
    for version in detail["versions"]:
        assert version["propagation"]["psa"]["status"] == version["propagation"]["erp"]["status"] == "confirmed"
    assert detail["versions"][2]["propagation"]["erp"]["confirmed_version"] == 3
    job = (await sandbox.get(f"/erp/services/rest/record/v1/job/eid:{contract_id}")).json()
    assert job["planVersion"] == 3 and job["projectedEndDate"] == "2026-12-31" and len(job["billingSchedule"]) == 4


async def test_a_psa_key_may_not_write_contract_terms_and_the_owner_table_decides(api, keys, run_jobs, services):
    async with services.db.transaction() as conn:
        _, psa_key = await create_client(conn, "kantata", "integration", system="psa")
        _, crm_key = await create_client(conn, "salesforce", "integration", system="crm")
    refused = await register(api, psa_key, acme())
    assert refused.status_code == 403, refused.text
    problem = refused.json()
    assert problem["code"] == "FIELD_NOT_OWNED" and problem["fields"] == ["contract.terms", "customer.name"]
    async with services.db.connection() as conn:
        assert await conn.fetchval("select count(*) from contract") == 0
        assert await conn.fetchval("select count(*) from customer where external_id = 'ACME-001'") == 1  # the fixture's
    registered = await register(api, crm_key, acme())
    assert registered.status_code == 201
    contract_id = registered.json()["id"]
    amend = await api.post(amendments(contract_id), json=ACME_CHANGE_ORDER, headers=auth(psa_key))
    assert amend.status_code == 403 and amend.json()["code"] == "FIELD_NOT_OWNED"

    # The table is data: hand contract terms to the PSA and the rule follows at once.
    async with services.db.transaction() as conn:
        await conn.execute("update field_ownership set owner_system = 'psa' where object_type = 'contract'")
    try:
        assert (
            await api.post(amendments(contract_id), json=ACME_CHANGE_ORDER, headers=auth(crm_key))
        ).status_code == 403
        assert (
            await api.post(amendments(contract_id), json=ACME_CHANGE_ORDER, headers=auth(psa_key))
        ).status_code == 201
    finally:
        async with services.db.transaction() as conn:
            await conn.execute("update field_ownership set owner_system = 'crm' where object_type = 'contract'")


async def test_a_whole_new_state_derives_the_same_amendment_as_the_change_order(api, keys, run_jobs, services):
    """What a CRM that sends whole contracts (Salesforce) gets: the same version 2 as the canonical amendment."""
    canonical_id = await active_acme(api, keys, run_jobs)
    assert (
        await api.post(amendments(canonical_id), json=ACME_CHANGE_ORDER, headers=auth(keys["integration"]))
    ).status_code == 201

    whole = acme(external_id="800XX0002")
    await register(api, keys["integration"], whole)
    whole["total_value"] = "360000.00"
    whole["milestones"].append(
        {"key": "M4", "name": "Rollout wave 2", "amount": "60000.00", "due_date": "2026-11-30", "depends_on": ["M3"]}
    )
    whole["reimbursable_expenses"] = [{"category": "travel", "cap": "20000.00"}]
    state = ContractState(ContractIn.model_validate(whole), 2, date(2026, 6, 1), "CO-7 scope extension")
    admin = Principal(uuid.uuid4(), "test-admin", "admin")
    first = await services.contracts.receive_contract_state(state, admin)
    again = await services.contracts.receive_contract_state(state, admin)
    assert (first.created, again.created) == (True, False)
    derived_id = str(first.answer.id)

    canonical, derived = await contract(api, keys, canonical_id), await contract(api, keys, derived_id)
    different = {"id", "external_id", "created_at", "updated_at", "project_id", "propagation", "exceptions"}
    for key in canonical.keys() - different:
        if key == "versions":
            strip = {"created_at", "propagation"}
            assert [{k: v for k, v in x.items() if k not in strip} for x in canonical[key]] == [
                {k: v for k, v in x.items() if k not in strip} for x in derived[key]
            ]
        else:
            assert canonical[key] == derived[key], key
    async with services.db.connection() as conn:
        payloads = await conn.fetch(
            "select payload from contract_version where version = 2 and contract_id = any($1::uuid[])",
            [uuid.UUID(canonical_id), uuid.UUID(derived_id)],
        )
    assert payloads[0]["payload"] == payloads[1]["payload"]


async def test_a_vat_id_supplied_by_amendment_unblocks_the_invoice_under_reverse_charge(api, keys, run_jobs):
    """Lumière (docs/billing.md): DE01 bills a French customer; no VAT id blocks the invoice until an amendment."""
    body = acme(**LUMIERE)
    contract_id = (await register(api, keys["integration"], body)).json()["id"]
    await accept(api, keys, contract_id, "M1", "2026-04-10T09:00:00Z")
    run = await api.post(
        "/process/v1/billing-runs",
        json={"as_of": "2026-04-30", "contract_id": contract_id},
        headers=auth(keys["finance"]),
    )
    [invoice] = run.json()["invoices"]
    assert invoice["status"] == "blocked" and invoice["tax"] is None

    vat = {"version": 2, "effective_date": "2026-04-15", "changes": {"tax": {"customer_tax_id": "FR40303265045"}}}
    amended = await api.post(amendments(contract_id), json=vat, headers=auth(keys["integration"]))
    assert amended.status_code == 201, amended.text
    assert (await contract(api, keys, contract_id))["tax"]["customer_tax_id"] == "FR40303265045"

    retried = await api.post(f"/process/v1/invoices/{invoice['id']}/retry", headers=auth(keys["finance"]))
    assert retried.status_code == 200, retried.text
    requoted = (await api.get(f"/process/v1/invoices/{invoice['id']}", headers=auth(keys["finance"]))).json()
    assert requoted["status"] in ("queued", "posting", "posted")
    assert (requoted["net"], requoted["tax"], requoted["total"]) == ("50000.00", "0.00", "50000.00")
    assert "reverse charge" in (requoted.get("notes") or "").lower()


async def test_hostile_amendments_are_422_naming_the_field_and_change_nothing(api, keys, run_jobs):
    contract_id = await active_acme(api, keys, run_jobs)
    integration = auth(keys["integration"])
    many = [{"key": f"X{i}", "name": "x", "amount": "1"} for i in range(501)]
    cases = [
        ({"version": 2, "effective_date": "2026-06-01T00:00:00Z"}, ["body", "effective_date"]),
        ({"version": 2, "effective_date": "2026-06-01", "changes": {"total_value": 360000}}, None),
        ({"version": 2, "effective_date": "2026-06-01", "changes": {"total_value": "1E+999999999"}}, None),
        ({"version": 2, "effective_date": "2026-06-01", "changes": {"add_milestones": many}}, None),
        ({"version": 2, "effective_date": "2026-06-01", "changes": {"owner": "me"}}, ["body", "changes", "owner"]),
        ({"version": 10**12, "effective_date": "2026-06-01"}, ["body", "version"]),
        ({"version": 2, "effective_date": "2026-06-01", "reason": "a\x00b"}, None),
    ]
    for body, loc in cases:
        response = await api.post(amendments(contract_id), json=body, headers=integration)
        assert response.status_code == 422, (body, response.text)
        problem = response.json()
        assert problem["errors"] and all(e.get("code") for e in problem["errors"]), problem
        if loc:
            assert loc in [e["loc"] for e in problem["errors"]], problem
    query = await api.post(amendments(contract_id) + "?dry_run=maybe", json=ACME_CHANGE_ORDER, headers=integration)
    assert query.status_code == 422 and query.json()["errors"][0]["loc"] == ["query", "dry_run"]
    malformed = await api.post(
        "/process/v1/contracts/not-a-uuid/amendments", json=ACME_CHANGE_ORDER, headers=integration
    )
    assert malformed.status_code == 404
    detail = await contract(api, keys, contract_id)
    assert detail["version"] == 1 and len(detail["versions"]) == 1
