"""Reconciliation (API.md "Billing"): every posted invoice against the ERP — missing, keyed twice by
hand, another amount, another currency — each mismatch a finance work item that resolves itself once
a later run finds the invoice in order; and per contract the money each system holds."""

from __future__ import annotations

from tests.factories import accepted_m1, acme, auth
from tests.work import billing_run

ERP = "/erp/services/rest/record/v1"
RECONCILE = "/process/v1/reconciliations"


async def _posted(api, keys, run_jobs, body) -> tuple[str, dict]:
    contract_id = await accepted_m1(api, keys, body)
    [invoice] = await billing_run(api, keys, "2026-03-31", contract_id)
    await run_jobs()
    return contract_id, invoice


async def _reconcile(api, keys) -> dict:
    r = await api.post(RECONCILE, json={"as_of": "2026-03-31"}, headers=auth(keys["finance"]))
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_clean_ledger_reconciles_and_shows_each_contracts_money_across_systems(api, keys, run_jobs):
    contract_id, invoice = await _posted(api, keys, run_jobs, acme())
    report = await _reconcile(api, keys)
    assert (report["checked"], report["mismatches"]) == (1, [])
    [row] = report["contracts"]
    # Acme: 300,000.00 signed; M1 (100,000.00) billed and posted, told to the PSA; nothing else ready.
    assert row["contract_id"] == contract_id
    assert (row["crm_value"], row["psa_billed"], row["erp_posted"], row["billed"], row["unbilled"]) == (
        "300000.00", "100000.00", "100000.00", "100000.00", "0.00",
    )  # fmt: skip
    assert row["drift"] == {"erp": "0.00", "psa": "0.00", "crm_open": "200000.00"}
    again = await api.get(f"{RECONCILE}/{report['id']}", headers=auth(keys["finance"]))
    assert again.json() == report
    per_contract = await api.get(f"/process/v1/contracts/{contract_id}/reconciliation", headers=auth(keys["finance"]))
    assert per_contract.json() == row


def _editable(record: dict) -> dict:
    """A record as a client sends it back (without what the ERP computes or assigns)."""
    return {k: v for k, v in record.items() if k not in ("id", "externalId", "subtotal", "taxTotal", "total")}


async def test_missing_duplicate_amount_and_currency_are_found_and_queued_for_finance(api, keys, run_jobs, sandbox):
    posted = [
        (await _posted(api, keys, run_jobs, acme(external_id=f"800XXREC{n:02d}", number=f"SOW-REC-{n}")))[1]
        for n in range(5)
    ]
    missing, amount, currency, twice, fine = posted
    # Someone works in the ERP: a record deleted, a line changed, a currency changed, one keyed again by hand.
    assert (await sandbox.delete(f"{ERP}/invoice/eid:{missing['id']}")).status_code == 204
    record = _editable((await sandbox.get(f"{ERP}/invoice/eid:{amount['id']}")).json())
    record["item"]["items"][0].update(amount="99999.00", tax="0.00")
    assert (await sandbox.put(f"{ERP}/invoice/eid:{amount['id']}", json=record)).status_code == 204
    record = _editable((await sandbox.get(f"{ERP}/invoice/eid:{currency['id']}")).json())
    assert (
        await sandbox.put(f"{ERP}/invoice/eid:{currency['id']}", json={**record, "currency": "EUR"})
    ).status_code == 204
    record = _editable((await sandbox.get(f"{ERP}/invoice/eid:{twice['id']}")).json())
    record["memo"] = f"keyed again from psbridge invoice {twice['id'].upper()}"
    assert (await sandbox.post(f"{ERP}/invoice", json=record)).status_code == 204

    report = await _reconcile(api, keys)
    assert report["checked"] == 5
    assert sorted((m["invoice_id"], m["kind"]) for m in report["mismatches"]) == sorted(
        [(missing["id"], "missing"), (amount["id"], "amount"), (currency["id"], "currency"), (twice["id"], "duplicate")]
    )
    by_kind = {m["kind"]: m["detail"] for m in report["mismatches"]}
    assert by_kind["amount"] == "ERP total 99999.00, psbridge 108875.00"
    assert by_kind["currency"] == "ERP EUR, psbridge USD"
    queue = (await api.get("/process/v1/exceptions?code=RECONCILIATION_MISMATCH", headers=auth(keys["finance"]))).json()
    assert sorted(e["subject"]["id"] for e in queue["items"]) == sorted(
        i["id"] for i in (missing, amount, currency, twice)
    )
    assert {e["queue"] for e in queue["items"]} == {"finance"}
    rows = {r["contract_id"]: r for r in report["contracts"]}
    assert rows[missing["contract_id"]]["drift"]["erp"] == "-100000.00"  # the ERP lost a whole invoice
    assert rows[fine["contract_id"]]["drift"]["erp"] == "0.00"

    # Finance repairs the amount in the ERP: the next run finds it in order and its work item resolves
    # itself; the others stay open.
    good = _editable((await sandbox.get(f"{ERP}/invoice/eid:{fine['id']}")).json())  # same lines, same total
    assert (await sandbox.put(f"{ERP}/invoice/eid:{amount['id']}", json=good)).status_code == 204
    again = await _reconcile(api, keys)
    assert {m["kind"] for m in again["mismatches"]} == {"missing", "currency", "duplicate"}
    after = (await api.get("/process/v1/exceptions?code=RECONCILIATION_MISMATCH", headers=auth(keys["finance"]))).json()
    assert sorted(e["subject"]["id"] for e in after["items"] if e["status"] != "resolved") == sorted(
        i["id"] for i in (missing, currency, twice)
    )


async def test_reconciliation_needs_finance_and_a_business_date(api, keys):
    assert (
        await api.post(RECONCILE, json={"as_of": "2026-03-31"}, headers=auth(keys["integration"]))
    ).status_code == 403
    bad = await api.post(RECONCILE, json={"as_of": "31/03/2026"}, headers=auth(keys["finance"]))
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "as_of"]
    unknown = await api.get(f"{RECONCILE}/00000000-0000-4000-8000-000000000000", headers=auth(keys["finance"]))
    assert unknown.status_code == 404 and unknown.json()["code"] == "UNKNOWN_RECONCILIATION"


async def test_the_nightly_job_reconciles_as_of_the_day_it_runs(api, keys, run_jobs, services):
    from datetime import UTC, datetime

    from jobs.reconciliation import reconcile

    await _posted(api, keys, run_jobs, acme())
    ctx = {"services": services, "job_id": "cron:reconcile", "job_try": 1, "max_tries": 3}
    reconciliation_id = await reconcile(ctx)  # type: ignore[arg-type]
    report = (await api.get(f"{RECONCILE}/{reconciliation_id}", headers=auth(keys["finance"]))).json()
    assert report["as_of"] == datetime.now(UTC).date().isoformat()
    assert (report["checked"], report["mismatches"]) == (1, [])
