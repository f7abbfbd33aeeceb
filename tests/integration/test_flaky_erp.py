"""A flaky ERP never exhausts an invoice: with 30 % of its answers errors and 10 % of its answers
lost after the write, every invoice of a run ends posted exactly once, with the ERP's totals equal
to psbridge's — jobs give up only once their time budget has passed, not after a handful of tries."""

from __future__ import annotations

from app.worker import build_worker
from tests.factories import accepted_m1, acme, auth

ERP = "/erp/services/rest/record/v1"
INVOICES = 12


async def test_every_invoice_is_posted_once_through_a_flaky_erp(api, keys, settings, sandbox_transport, sandbox):
    for n in range(INVOICES):
        await accepted_m1(api, keys, acme(external_id=f"800XXFLK{n:02d}", number=f"SOW-FLAKY-{n}"))
    faults = {"seed": 3, "erp": {"error_rate": 0.3, "drop_response_rate": 0.1}}
    assert (await sandbox.post("/__sandbox/faults", json=faults)).status_code == 200
    run = await api.post("/process/v1/billing-runs", json={"as_of": "2026-03-31"}, headers=auth(keys["finance"]))
    invoices = {i["id"]: i for i in run.json()["invoices"]}
    assert len(invoices) == INVOICES

    patient = settings.model_copy(update={"job_time_budget_seconds": 120})  # three tries, then two minutes
    worker = build_worker(patient, sandbox_transport, burst=True, poll_delay=0.05, cron_jobs=[])
    try:
        await worker.async_run()
    finally:
        await worker.close()

    for invoice_id in invoices:
        got = (await api.get(f"/process/v1/invoices/{invoice_id}", headers=auth(keys["finance"]))).json()
        assert (got["status"], got["codes"]) == ("posted", []), got
    await sandbox.post("/__sandbox/faults", json={"erp": {"error_rate": 0, "drop_response_rate": 0}})
    listing = (await sandbox.get(f"{ERP}/invoice", params={"limit": 1000})).json()
    assert listing["totalResults"] == INVOICES  # never twice
    assert {r["externalId"]: r["total"] for r in listing["items"]} == {i: v["total"] for i, v in invoices.items()}
    log = (await sandbox.get("/__sandbox/log", params={"system": "erp", "limit": 1000})).json()["items"]
    assert any(e["status"] >= 500 for e in log)  # the faults did bite
