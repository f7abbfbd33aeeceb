"""The thin slice, through the API: contract -> project -> milestone -> billing run -> ERP posting."""

from __future__ import annotations

import asyncio
import uuid

from tests.factories import accepted_m1, acme, auth, register
from tests.work import billing_run


async def test_active_contract_gets_a_psa_project_and_billing_schedule(api, keys, run_jobs, sandbox):
    response = await register(api, keys["integration"], acme())
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "active" and created["version"] == 1 and created["exceptions"] == []

    await run_jobs()

    contract = (await api.get(f"/process/v1/contracts/{created['id']}", headers=auth(keys["finance"]))).json()
    assert contract["project_id"].startswith("PRJ-")
    assert contract["propagation"]["psa"]["status"] == "confirmed"
    assert contract["propagation"]["erp"]["status"] == "confirmed"
    project = (await sandbox.get(f"/psa/projects/{contract['project_id']}")).json()
    assert project["external_id"] == created["id"] and len(project["milestones"]) == 3
    job = (await sandbox.get(f"/erp/services/rest/record/v1/job/eid:{created['id']}")).json()
    assert [m["milestone"] for m in job["billingSchedule"]] == ["M1", "M2", "M3"]


async def test_resending_the_same_contract_is_200_and_other_terms_409(api, keys):
    first = await register(api, keys["integration"], acme())
    again = await register(api, keys["integration"], acme())
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    changed = await register(api, keys["integration"], acme(total_value="300001.00"))
    assert changed.status_code == 409
    assert changed.headers["content-type"] == "application/problem+json"
    assert changed.json()["code"] == "AMENDMENT_REQUIRED"


async def test_governance_failures_are_all_reported_and_block_the_contract(api, keys):
    body = acme(
        external_id="800XX0009",
        legal_entity="GB01",
        currency="JPY",
        customer={"external_id": "NOBODY-1", "name": "Nobody"},
        tax={"jurisdiction": "XX-YY"},
    )
    response = await register(api, keys["integration"], body)
    assert response.status_code == 201
    result = response.json()
    assert result["status"] == "blocked"
    assert sorted(e["code"] for e in result["exceptions"]) == [
        "CURRENCY_NOT_ALLOWED",
        "CUSTOMER_NOT_IN_ERP",
        "UNKNOWN_TAX_JURISDICTION",
    ]
    listed = await api.get(f"/process/v1/exceptions?subject_id={result['id']}", headers=auth(keys["finance"]))
    assert {e["code"] for e in listed.json()["items"]} == {e["code"] for e in result["exceptions"]}


async def test_customer_in_another_subsidiary_and_milestones_not_summing_block(api, keys):
    body = acme(
        external_id="800XX0010", customer={"external_id": "TYRELL-UK-001", "name": "Tyrell"}, total_value="300000.01"
    )
    result = (await register(api, keys["integration"], body)).json()
    assert result["status"] == "blocked"
    assert sorted(e["code"] for e in result["exceptions"]) == ["LEGAL_ENTITY_MISMATCH", "MILESTONES_DO_NOT_SUM"]


async def test_milestone_prerequisites_then_invoice_posted_once(api, keys, run_jobs, sandbox):
    contract_id = (await register(api, keys["integration"], acme())).json()["id"]
    early = await api.post(
        f"/process/v1/milestones/{contract_id}/M2/acceptance",
        json={"accepted_at": "2026-03-28T16:00:00Z"},
        headers=auth(keys["integration"]),
    )
    assert early.status_code == 409 and early.json()["code"] == "PREREQUISITES_NOT_MET"

    accepted = await api.post(
        f"/process/v1/milestones/{contract_id}/M1/acceptance",
        json={"accepted_at": "2026-03-28T16:00:00Z", "accepted_by": "client PM"},
        headers=auth(keys["integration"]),
    )
    assert accepted.status_code == 200, accepted.text
    transaction = accepted.json()["transaction"]
    assert transaction["amount"] == "100000.00" and transaction["currency"] == "USD"

    repeat = await api.post(
        f"/process/v1/milestones/{contract_id}/M1/acceptance",
        json={"accepted_at": "2026-03-28T16:00:00Z"},
        headers=auth(keys["integration"]),
    )
    assert repeat.status_code == 200 and repeat.json()["transaction"]["id"] == transaction["id"]
    other = await api.post(
        f"/process/v1/milestones/{contract_id}/M1/acceptance",
        json={"accepted_at": "2026-03-29T16:00:00Z"},
        headers=auth(keys["integration"]),
    )
    assert other.status_code == 409 and other.json()["code"] == "ALREADY_ACCEPTED"

    run = await api.post("/process/v1/billing-runs", json={"as_of": "2026-03-31"}, headers=auth(keys["finance"]))
    assert run.status_code == 201, run.text
    [invoice] = run.json()["invoices"]
    # US01 sells in New York: 100,000.00 x 8.875 % = 8,875.00
    assert (invoice["net"], invoice["tax"], invoice["total"]) == ("100000.00", "8875.00", "108875.00")
    assert invoice["status"] == "queued" and invoice["kind"] == "invoice"

    # Nothing is left to bill: a second run packages nothing.
    second = await api.post("/process/v1/billing-runs", json={"as_of": "2026-03-31"}, headers=auth(keys["finance"]))
    assert second.json()["invoices"] == []

    await run_jobs()

    posted = (await api.get(f"/process/v1/invoices/{invoice['id']}", headers=auth(keys["finance"]))).json()
    assert posted["status"] == "posted" and posted["erp_ref"]
    assert posted["lines"][0]["transaction_ids"] == [transaction["id"]]
    erp = (await sandbox.get(f"/erp/services/rest/record/v1/invoice/eid:{invoice['id']}")).json()
    assert erp["id"] == posted["erp_ref"] and erp["total"] == "108875.00"
    listing = (await sandbox.get("/erp/services/rest/record/v1/invoice")).json()
    assert listing["totalResults"] == 1
    billed = (await sandbox.get("/psa/billing-status")).json()
    assert [i["external_id"] for i in billed["items"]] == [f"{contract_id}:M1"]  # milestones: contract-qualified

    gql = await api.post(
        "/graphql",
        headers=auth(keys["finance"]),
        json={
            "query": "query($id: ID!) { contract(id: $id) { number status billedAmount unbilledAmount "
            "milestones { key status } invoices { id status total } } }",
            "variables": {"id": contract_id},
        },
    )
    data = gql.json()["data"]["contract"]
    assert data["number"] == "SOW-2026-014" and data["billedAmount"] == "100000.00"
    assert data["unbilledAmount"] == "0.00"
    assert [m["status"] for m in data["milestones"]] == ["invoiced", "pending", "pending"]
    assert data["invoices"] == [{"id": invoice["id"], "status": "posted", "total": "108875.00"}]


async def _erp_calls(sandbox) -> list[tuple[str, str, int]]:
    log = (await sandbox.get("/__sandbox/log", params={"system": "erp", "limit": 1000})).json()["items"]
    return [(e["method"], e["path"].rsplit("/", 2)[-2], e["status"]) for e in log if "/invoice/" in e["path"]]


async def test_a_lost_erp_answer_is_looked_up_not_written_again(api, keys, run_jobs, sandbox):
    await accepted_m1(api, keys)
    await sandbox.post("/__sandbox/faults", json={"erp": {"drop_response_rate": 1.0}})
    invoice_id = (await billing_run(api, keys, "2026-03-31"))[0]["id"]
    await run_jobs()  # the ERP created the invoice but its answer was lost (504): an ambiguous outcome
    posted = (await api.get(f"/process/v1/invoices/{invoice_id}", headers=auth(keys["finance"]))).json()
    assert posted["status"] == "posted" and posted["codes"] == []
    # One write; the next attempt looked the record up by our id and found it.
    calls = await _erp_calls(sandbox)
    assert [(method, status) for method, _, status in calls] == [("PUT", 504), ("GET", 200)]
    erp = (await sandbox.get(f"/erp/services/rest/record/v1/invoice/eid:{invoice_id}")).json()
    assert erp["id"] == posted["erp_ref"]
    listing = (await sandbox.get("/erp/services/rest/record/v1/invoice")).json()
    assert listing["totalResults"] == 1


async def test_an_erp_outage_fails_into_the_queue_and_a_retry_posts_with_clean_codes(api, keys, run_jobs, sandbox):
    await accepted_m1(api, keys)
    await sandbox.post("/__sandbox/faults", json={"erp": {"down": True}})
    invoice_id = (await billing_run(api, keys, "2026-03-31"))[0]["id"]
    await run_jobs()  # the ERP answers 503 to every try: the job gives up into the work queue
    failed = (await api.get(f"/process/v1/invoices/{invoice_id}", headers=auth(keys["finance"]))).json()
    assert failed["status"] == "failed" and failed["codes"] == ["ERP_POSTING_FAILED"]
    queue = (await api.get("/process/v1/exceptions?code=ERP_POSTING_FAILED", headers=auth(keys["finance"]))).json()
    assert [e["subject"]["id"] for e in queue["items"]] == [invoice_id]

    await sandbox.post("/__sandbox/faults", json={"erp": {"down": False}})
    retried = await api.post(f"/process/v1/invoices/{invoice_id}/retry", headers=auth(keys["finance"]))
    assert retried.status_code == 200
    await run_jobs()
    posted = (await api.get(f"/process/v1/invoices/{invoice_id}", headers=auth(keys["finance"]))).json()
    assert posted["status"] == "posted" and posted["codes"] == []  # the state now, not an earlier attempt's
    listing = (await sandbox.get("/erp/services/rest/record/v1/invoice")).json()
    assert listing["totalResults"] == 1


async def test_tax_outage_leaves_a_draft_that_a_job_quotes_once_tax_is_back(api, keys, run_jobs, sandbox, services):
    await accepted_m1(api, keys)
    await sandbox.post("/__sandbox/faults", json={"tax": {"down": True}})
    [invoice] = await billing_run(api, keys, "2026-03-31")
    assert invoice["status"] == "draft" and invoice["tax"] is None

    await run_jobs()  # tax still down: the quote job retries, then gives up; the draft stays
    assert (await api.get(f"/process/v1/invoices/{invoice['id']}", headers=auth(keys["finance"]))).json()[
        "status"
    ] == "draft"

    await sandbox.post("/__sandbox/faults", json={"tax": {"down": False}})
    # The sweeper finds the draft (no live job) and queues its quote again under the same job id.
    async with services.db.transaction() as conn:
        await conn.execute(
            "update invoice set updated_at = now() - interval '1 hour' where id = $1::uuid", invoice["id"]
        )
    assert (await services.recovery.sweep())["quote"] == 1
    await run_jobs()
    posted = (await api.get(f"/process/v1/invoices/{invoice['id']}", headers=auth(keys["finance"]))).json()
    assert posted["status"] == "posted" and posted["total"] == "108875.00"


async def test_concurrent_runs_never_share_or_split_a_contract(api, keys, services):
    contract_ids = []
    for n in range(6):
        body = acme(external_id=f"800XX09{n:02d}", number=f"SOW-C-{n}")
        contract_id = (await register(api, keys["integration"], body)).json()["id"]
        contract_ids.append(contract_id)
        for key, day in (("M1", "2026-03-02"), ("M2", "2026-03-03")):
            accepted = await api.post(
                f"/process/v1/milestones/{contract_id}/{key}/acceptance",
                json={"accepted_at": f"{day}T10:00:00Z"},
                headers=auth(keys["integration"]),
            )
            assert accepted.status_code == 200
    runs = await asyncio.gather(
        *(
            api.post("/process/v1/billing-runs", json={"as_of": "2026-03-31"}, headers=auth(keys["finance"]))
            for _ in range(3)
        )
    )
    invoices = [i for r in runs for i in r.json()["invoices"]]
    assert sorted(i["contract_id"] for i in invoices) == sorted(contract_ids)  # one invoice per contract, whole
    assert all(i["net"] == "220000.00" for i in invoices)
    async with services.db.connection() as conn:
        on_invoices = await conn.fetchval("select count(*) from billing_transaction where invoice_id is not null")
    assert on_invoices == 12


async def test_contract_lists_page_with_cursors(api, keys):
    ids = [
        (await register(api, keys["integration"], acme(external_id=f"800XX07{n}", number=f"SOW-P-{n}"))).json()["id"]
        for n in range(3)
    ]
    first = (await api.get("/process/v1/contracts?limit=2", headers=auth(keys["finance"]))).json()
    assert [c["id"] for c in first["items"]] == ids[:2] and first["next_cursor"]
    second = await api.get(f"/process/v1/contracts?limit=2&after={first['next_cursor']}", headers=auth(keys["finance"]))
    assert [c["id"] for c in second.json()["items"]] == ids[2:] and second.json()["next_cursor"] is None
    bad = await api.get("/process/v1/contracts?after=not-a-cursor", headers=auth(keys["finance"]))
    assert bad.status_code == 422 and bad.json()["code"] == "INVALID_CURSOR"


async def test_billed_feedback_lost_with_its_job_is_sent_by_the_sweeper(
    api, keys, run_jobs, sandbox, services, monkeypatch
):
    """The PSA and the CRM learn an invoice was billed from a job whose intent is a row: a worker that
    dies between posting and queueing the feedback (or a Redis that forgets the job) loses nothing."""
    contract_id = await accepted_m1(api, keys)
    [invoice] = await billing_run(api, keys, "2026-03-31")

    queue = services.billing.queue
    enqueue = queue.enqueue

    async def dies_before_feedback(job: str, *args: str, **kwargs: str) -> bool:
        if job == "notify_billed":
            return False  # the process died here: the job never reached Redis
        return await enqueue(job, *args, **kwargs)

    monkeypatch.setattr(queue, "enqueue", dies_before_feedback)
    assert await services.billing.post_invoice(uuid.UUID(invoice["id"]), True) == "posted"
    monkeypatch.setattr(queue, "enqueue", enqueue)
    await run_jobs()  # the queued post job finds the invoice posted and does nothing
    assert (await sandbox.get("/psa/billing-status")).json()["items"] == []

    # Within the grace period the sweeper leaves the intent alone (a job may still be on its way).
    assert (await services.recovery.sweep())["feedback"] == 0
    async with services.db.transaction() as conn:
        await conn.execute(
            "update invoice set feedback_due_at = now() - interval '1 hour' where id = $1::uuid", invoice["id"]
        )
    assert (await services.recovery.sweep())["feedback"] == 1
    await run_jobs()
    billed = (await sandbox.get("/psa/billing-status")).json()
    assert [(i["external_id"], i["invoice_id"]) for i in billed["items"]] == [(f"{contract_id}:M1", invoice["id"])]
    crm = (await sandbox.get(f"/crm/contracts/{acme()['external_id']}/billing-status")).json()
    assert [i["invoice_id"] for i in crm["items"]] == [invoice["id"]]
    assert (await services.recovery.sweep())["feedback"] == 0  # done: never sent again


async def test_a_psa_refusing_billed_feedback_opens_a_work_item_and_is_not_asked_again(
    api, keys, run_jobs, sandbox, services
):
    await accepted_m1(api, keys)
    await sandbox.post("/__sandbox/faults", json={"psa": {"reject_rate": 1.0}})
    [invoice] = await billing_run(api, keys, "2026-03-31")
    await run_jobs()  # posted; the PSA answers 422 to the feedback: a refusal is not retried
    posted = (await api.get(f"/process/v1/invoices/{invoice['id']}", headers=auth(keys["finance"]))).json()
    assert posted["status"] == "posted"
    log = (await sandbox.get("/__sandbox/log", params={"system": "psa", "limit": 1000})).json()["items"]
    assert [(e["method"], e["status"]) for e in log if e["path"].endswith("/billing-status")] == [("POST", 422)]
    queue = (await api.get("/process/v1/exceptions?code=FEEDBACK_REJECTED", headers=auth(keys["finance"]))).json()
    [item] = queue["items"]
    assert item["subject"]["id"] == invoice["id"] and "INVALID_REQUEST" in item["detail"]
    async with services.db.transaction() as conn:  # however old, a refused feedback is not the sweeper's
        await conn.execute(
            "update invoice set posted_at = now() - interval '1 hour' where id = $1::uuid", invoice["id"]
        )
    assert (await services.recovery.sweep())["feedback"] == 0

    await sandbox.post("/__sandbox/faults", json={"psa": {"reject_rate": 0.0}})
    retried = await api.post(f"/process/v1/exceptions/{item['id']}/retry", json={}, headers=auth(keys["finance"]))
    assert retried.status_code in (200, 202, 204), retried.text
    await run_jobs()
    billed = (await sandbox.get("/psa/billing-status")).json()["items"]
    assert [i["invoice_id"] for i in billed] == [invoice["id"]]
    after = (await api.get(f"/process/v1/exceptions/{item['id']}", headers=auth(keys["finance"]))).json()
    assert after["status"] == "resolved"


async def test_a_backend_outage_answers_503_with_retry_after_and_never_the_backends_body(api, keys, sandbox):
    await sandbox.post("/__sandbox/faults", json={"erp": {"down": True}})
    r = await register(api, keys["integration"], acme())
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["retry-after"]) >= 1
    problem = r.json()
    assert problem["code"] == "BACKEND_UNAVAILABLE" and problem["detail"] == "erp: HTTP 503 SERVICE_UNAVAILABLE"
    assert "sandbox" not in r.text  # the ERP's own words stay in our log


async def test_a_closed_erp_period_is_finances_work_item_and_posts_after_it_reopens(api, keys, run_jobs, sandbox):
    await accepted_m1(api, keys)
    await sandbox.post("/__sandbox/faults", json={"erp": {"closed_periods": ["2026-03"]}})
    invoice_id = (await billing_run(api, keys, "2026-03-31"))[0]["id"]
    await run_jobs()
    failed = (await api.get(f"/process/v1/invoices/{invoice_id}", headers=auth(keys["finance"]))).json()
    assert failed["status"] == "failed" and failed["codes"] == ["PERIOD_CLOSED"]
    log = (await sandbox.get("/__sandbox/log", params={"system": "erp", "limit": 1000})).json()["items"]
    assert [e["status"] for e in log if "/invoice/" in e["path"]] == [400]  # refused once, never retried
    queue = (await api.get("/process/v1/exceptions?code=PERIOD_CLOSED", headers=auth(keys["finance"]))).json()
    [item] = queue["items"]
    assert item["queue"] == "finance" and item["subject"]["id"] == invoice_id and "retry" in item["actions"]

    await sandbox.post("/__sandbox/faults", json={"erp": {"closed_periods": []}})
    retried = await api.post(f"/process/v1/exceptions/{item['id']}/retry", json={}, headers=auth(keys["finance"]))
    assert retried.status_code in (200, 202, 204), retried.text
    await run_jobs()
    posted = (await api.get(f"/process/v1/invoices/{invoice_id}", headers=auth(keys["finance"]))).json()
    assert posted["status"] == "posted" and posted["codes"] == []
    assert (await api.get(f"/process/v1/exceptions/{item['id']}", headers=auth(keys["finance"]))).json()[
        "status"
    ] == "resolved"
