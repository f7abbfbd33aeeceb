"""Exceptions are work items: each failure lands in a queue with an owner, an SLA and a retry."""

from __future__ import annotations

from tests.factories import LUMIERE, acme, auth, register


async def test_retry_activates_a_blocked_contract_once_governance_passes(api, keys, sandbox, run_jobs):
    body = acme(external_id="800XX0700", customer={"external_id": "NEWCO-001", "name": "NewCo"})
    created = (await register(api, keys["integration"], body)).json()
    assert created["status"] == "blocked"
    [exception] = created["exceptions"]
    assert exception["code"] == "CUSTOMER_NOT_IN_ERP"
    item = (await api.get(f"/process/v1/exceptions/{exception['id']}", headers=auth(keys["integration"]))).json()
    assert item["queue"] == "integration" and item["actions"] == ["retry"] and item["sla_due_at"]

    still = await api.post(f"/process/v1/exceptions/{exception['id']}/retry", headers=auth(keys["integration"]))
    assert still.status_code == 200 and still.json()["status"] == "open"

    put = await sandbox.put(
        "/erp/services/rest/record/v1/customer/eid:NEWCO-001", json={"companyName": "NewCo", "subsidiary": "US01"}
    )
    assert put.status_code == 204
    retried = await api.post(
        f"/process/v1/exceptions/{exception['id']}/retry",
        json={"note": "customer created"},
        headers=auth(keys["integration"]),
    )
    assert retried.json()["status"] == "resolved" and retried.json()["note"] == "customer created"
    await run_jobs()
    contract = (await api.get(f"/process/v1/contracts/{created['id']}", headers=auth(keys["finance"]))).json()
    assert contract["status"] == "active" and contract["project_id"] and contract["exceptions"] == []


async def test_intra_eu_supply_without_vat_id_blocks_the_invoice_in_the_finance_queue(api, keys, run_jobs):
    contract_id = (await register(api, keys["integration"], acme(**LUMIERE))).json()["id"]
    accepted = await api.post(
        f"/process/v1/milestones/{contract_id}/M1/acceptance",
        json={"accepted_at": "2026-04-10T09:00:00+02:00"},
        headers=auth(keys["integration"]),
    )
    assert accepted.status_code == 200
    run = (
        await api.post(
            "/process/v1/billing-runs",
            json={"as_of": "2026-04-30", "contract_id": contract_id},
            headers=auth(keys["finance"]),
        )
    ).json()
    [invoice] = run["invoices"]
    assert invoice["status"] == "blocked" and invoice["tax"] is None and invoice["total"] is None
    assert invoice["net"] == "50000.00" and invoice["codes"] == ["TAX_VALIDATION_FAILED"]

    queue = (
        await api.get("/process/v1/exceptions?queue=finance&code=TAX_VALIDATION_FAILED", headers=auth(keys["finance"]))
    ).json()
    [item] = queue["items"]
    assert item["subject"] == {"type": "invoice", "id": invoice["id"]}
    # One customer's tax data blocks it: every invoice of that customer shares the group, fixed once.
    assert item["group_key"] == "TAX_VALIDATION_FAILED:LUMIERE-001"
    acknowledged = await api.post(
        f"/process/v1/exceptions/{item['id']}/acknowledge", json={"owner": "ap-team"}, headers=auth(keys["finance"])
    )
    assert acknowledged.json()["status"] == "acknowledged" and acknowledged.json()["owner"] == "ap-team"
    assert [(h["action"], h["actor"], h["owner"]) for h in acknowledged.json()["history"]] == [
        ("opened", None, None),
        ("acknowledged", "test-finance", "ap-team"),
    ]

    # Nothing changed upstream: a retry re-quotes, still fails, and leaves the invoice blocked (200).
    retry = await api.post(f"/process/v1/invoices/{invoice['id']}/retry", headers=auth(keys["finance"]))
    assert retry.status_code == 200 and retry.json()["status"] == "blocked"
    await run_jobs()
    gql = await api.post(
        "/graphql",
        headers=auth(keys["finance"]),
        json={
            "query": "query($id: ID!) { contract(id: $id) { billedAmount unbilledAmount } }",
            "variables": {"id": contract_id},
        },
    )
    # Money on a blocked invoice is still unbilled.
    assert gql.json()["data"]["contract"] == {"billedAmount": "0.00", "unbilledAmount": "50000.00"}


async def test_blocked_contract_refuses_milestone_acceptance(api, keys):
    body = acme(external_id="800XX0701", customer={"external_id": "GHOST-1", "name": "Ghost"})
    contract_id = (await register(api, keys["integration"], body)).json()["id"]
    response = await api.post(
        f"/process/v1/milestones/{contract_id}/M1/acceptance",
        json={"accepted_at": "2026-03-28T16:00:00Z"},
        headers=auth(keys["integration"]),
    )
    assert response.status_code == 409 and response.json()["code"] == "CONTRACT_BLOCKED"


async def test_psa_outage_ends_in_propagation_failed_and_a_retry_completes_it(api, keys, sandbox, run_jobs):
    await sandbox.post("/__sandbox/faults", json={"psa": {"down": True}})
    contract_id = (await register(api, keys["integration"], acme())).json()["id"]
    await run_jobs()  # every try fails; the last one leaves a work item
    contract = (await api.get(f"/process/v1/contracts/{contract_id}", headers=auth(keys["integration"]))).json()
    assert contract["propagation"]["psa"]["status"] == "failed"
    assert contract["propagation"]["psa"]["attempts"] == 3 and "503" in contract["propagation"]["psa"]["last_error"]
    assert contract["propagation"]["erp"]["status"] == "pending"  # never reached: psa goes first
    [item] = contract["exceptions"]
    assert item["code"] == "PROPAGATION_FAILED"

    await sandbox.post("/__sandbox/faults", json={"psa": {"down": False}})
    retried = await api.post(f"/process/v1/exceptions/{item['id']}/retry", headers=auth(keys["integration"]))
    assert retried.status_code == 200
    await run_jobs()
    contract = (await api.get(f"/process/v1/contracts/{contract_id}", headers=auth(keys["integration"]))).json()
    assert {t: p["status"] for t, p in contract["propagation"].items()} == {"psa": "confirmed", "erp": "confirmed"}
    assert contract["project_id"] and contract["exceptions"] == []


async def test_a_resolved_exception_stays_resolved(api, keys):
    blocked = acme(customer={"external_id": "NOBODY-1", "name": "Nobody"}, tax={"jurisdiction": "ZZ"})
    raised = {e["code"]: e["id"] for e in (await register(api, keys["integration"], blocked)).json()["exceptions"]}
    assert set(raised) == {"CUSTOMER_NOT_IN_ERP", "UNKNOWN_TAX_JURISDICTION"}
    finance = auth(keys["finance"])
    url = f"/process/v1/exceptions/{raised['CUSTOMER_NOT_IN_ERP']}"
    resolved = await api.post(f"{url}/resolve", json={"note": "fixed by hand"}, headers=finance)
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    again = await api.post(f"{url}/resolve", headers=finance)
    assert again.status_code == 200 and again.json()["updated_at"] == resolved.json()["updated_at"]

    # The problem recurs (a retry re-runs governance): a new exception opens for the same code and subject...
    retry = await api.post(f"/process/v1/exceptions/{raised['UNKNOWN_TAX_JURISDICTION']}/retry", headers=finance)
    assert retry.status_code == 200, retry.text
    open_now = (await api.get("/process/v1/exceptions?status=open&code=CUSTOMER_NOT_IN_ERP", headers=finance)).json()
    assert [e["id"] for e in open_now["items"]] != [raised["CUSTOMER_NOT_IN_ERP"]] and len(open_now["items"]) == 1
    # ...and acknowledging the resolved one neither re-opens it nor collides with the new one (once a 500).
    reopened = await api.post(f"{url}/acknowledge", json={"owner": "ana"}, headers=finance)
    assert reopened.status_code == 409 and reopened.json()["code"] == "EXCEPTION_RESOLVED"
    assert (await api.get(url, headers=finance)).json()["status"] == "resolved"
