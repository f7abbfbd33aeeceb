"""Re-evaluation: an amendment's dry run answers exactly what the amendment then does (the same
re-evaluation, rolled back), an activation releases work held CONTRACT_BLOCKED, and every change
to an entry writes its outbox event in the same transaction."""

from __future__ import annotations

from typing import Any

from tests.factories import acme, auth
from tests.work import amend, get_entry, money, new_contract, post_expenses, post_time, time_entry, tm
from tests.work import expense as expense_entry

AMENDMENTS = "/process/v1/contracts/{}/amendments"


async def _preview(api, keys, contract_id: str, body: dict[str, Any]) -> dict[str, Any]:  # noqa: ANN001
    response = await api.post(
        AMENDMENTS.format(contract_id) + "?dry_run=true", json=body, headers=auth(keys["integration"])
    )
    assert response.status_code == 200, response.text
    preview: dict[str, Any] = response.json()
    return preview


async def _capped_contract(api, keys) -> str:  # noqa: ANN001
    """Cap 2500.00 at 200.00/h: TE-1 8h = 1600.00 billable; TE-2 8h = 1600.00 -> 900.00 billable, 700.00 held."""
    contract_id = await new_contract(api, keys, tm(time_cap="2500.00"))
    results = await post_time(
        api,
        keys,
        [time_entry("TE-1", contract_id, "2026-03-02", "8"), time_entry("TE-2", contract_id, "2026-06-02", "8")],
    )
    assert [money(r) for r in results] == [
        ("billable", "1600.00", None, []),
        ("billable", "900.00", "700.00", ["CAP_EXCEEDED"]),
    ]
    return contract_id


async def test_a_raised_cap_previews_its_release_exactly_and_the_preview_changes_nothing(api, keys):
    contract_id = await _capped_contract(api, keys)
    body = {"version": 2, "effective_date": "2026-07-01", "reason": "cap", "changes": {"time_cap": "4000.00"}}
    preview = await _preview(api, keys, contract_id, body)
    # Room 4000.00 - 0 invoiced: TE-2's held 700.00 is released as its own transaction.
    assert preview["released"] == [{"external_id": "TE-2", "amount": "700.00"}]
    assert preview["repriced"] == []
    assert preview["unbilled"] == {"before": "2500.00", "after": "3200.00"}
    assert preview["held"] == {"before": "700.00", "after": "0.00"}
    # The dry run rolled back: TE-2 is still split.
    assert money(await get_entry(api, keys, "TE-2")) == ("billable", "900.00", "700.00", ["CAP_EXCEEDED"])

    await amend(api, keys, contract_id, 2, "2026-07-01", time_cap="4000.00")
    te2 = await get_entry(api, keys, "TE-2")
    assert money(te2) == ("billable", "1600.00", None, [])
    kinds = sorted((t["kind"], t["amount"], t["status"]) for t in te2["transactions"])
    assert kinds == [("release", "700.00", "unbilled"), ("time", "900.00", "unbilled")]


async def test_a_rate_change_previews_the_repricing_of_unbilled_time_on_or_after_its_date(api, keys):
    contract_id = await _capped_contract(api, keys)
    te2_time = next(t for t in (await get_entry(api, keys, "TE-2"))["transactions"] if t["status"] == "unbilled")
    changes = {
        "time_cap": "5000.00",
        "rate_card": [{"role": "consultant", "rate": "250.00", "effective_from": "2026-06-01"}],
    }
    body = {"version": 2, "effective_date": "2026-06-01", "reason": "rate", "changes": changes}
    preview = await _preview(api, keys, contract_id, body)
    # TE-1 (2026-03-02) keeps 200.00/h; TE-2 (2026-06-02) is 8 x 250.00 = 2000.00, all billable
    # under the new cap: its pending time transaction is re-priced in place 900.00 -> 2000.00.
    assert preview["repriced"] == [{"transaction_id": te2_time["id"], "before": "900.00", "after": "2000.00"}]
    assert preview["released"] == []
    assert preview["unbilled"] == {"before": "2500.00", "after": "3600.00"}  # 1600.00 + 2000.00
    assert preview["held"] == {"before": "700.00", "after": "0.00"}

    await amend(api, keys, contract_id, 2, "2026-06-01", **changes)
    assert money(await get_entry(api, keys, "TE-1")) == ("billable", "1600.00", None, [])
    te2 = await get_entry(api, keys, "TE-2")
    assert money(te2) == ("billable", "2000.00", None, [])
    assert [(t["id"], t["amount"]) for t in te2["transactions"]] == [(te2_time["id"], "2000.00")]


async def test_work_for_a_blocked_contract_is_held_then_released_when_it_activates(api, keys, sandbox):
    body = acme(
        external_id="800XX0901",
        number="SOW-BLOCKED-1",
        customer={"external_id": "LATECOMER-1", "name": "Latecomer"},
        billing_model="time_and_materials",
        total_value=None,
        milestones=[],
        rate_card=[{"role": "consultant", "rate": "200.00", "effective_from": "2026-01-05"}],
    )
    created = await api.post("/process/v1/contracts", json=body, headers=auth(keys["integration"]))
    assert created.status_code == 201 and created.json()["status"] == "blocked", created.text
    contract_id = created.json()["id"]
    [held] = await post_time(api, keys, [time_entry("TE-B1", contract_id, "2026-03-02", "7.5")])
    assert (held["status"], *money(held)) == ("held", "held", "0.00", None, ["CONTRACT_BLOCKED"])
    entry = await get_entry(api, keys, "TE-B1")
    [t] = entry["transactions"]
    assert (t["status"], t["amount"], t["reason"]) == ("held", "0.00", "contract_blocked")
    assert "retry" in t["release"]

    # The customer appears in the ERP; retrying the governance exception activates the contract.
    put = await sandbox.put(
        "/erp/services/rest/record/v1/customer/eid:LATECOMER-1", json={"companyName": "Latecomer", "subsidiary": "US01"}
    )
    assert put.status_code == 204, put.text
    [governance] = created.json()["exceptions"]
    retried = await api.post(f"/process/v1/exceptions/{governance['id']}/retry", headers=auth(keys["integration"]))
    assert retried.status_code == 200, retried.text
    entry = await get_entry(api, keys, "TE-B1")
    assert money(entry) == ("billable", "1500.00", None, [])  # 7.5 x 200.00
    assert [(t["kind"], t["amount"], t["reason"]) for t in entry["transactions"]] == [
        ("time", "1500.00", "awaiting_billing_run")
    ]


async def test_every_change_to_an_entry_writes_its_event_in_the_same_transaction(api, keys, services):
    contract_id = await new_contract(api, keys, tm(time_cap="1000.00"))
    await post_time(api, keys, [time_entry("TE-E1", contract_id, "2026-03-02", "4")])  # 800.00: accepted
    await post_time(api, keys, [time_entry("TE-E2", contract_id, "2026-03-03", "4")])  # 200.00 + 600.00 held
    await post_time(api, keys, [time_entry("TE-E3", contract_id, "2026-03-04", "1")])  # 200.00, all held
    await post_time(api, keys, [time_entry("TE-E1", contract_id, "2026-03-02", "0.5")])  # corrected to 100.00
    deleted = await api.delete("/process/v1/time-entries/kantata/TE-E3", headers=auth(keys["integration"]))
    assert deleted.status_code == 200, deleted.text
    async with services.db.connection() as conn:
        rows = await conn.fetch(
            "select event_type, subject_type, payload from outbox_event "
            "where event_type like 'entry.%' or event_type = 'transaction.released' order by id"
        )
    events = [(r["event_type"], r["payload"].get("external_id")) for r in rows]
    assert events == [
        ("entry.accepted", "TE-E1"),
        ("entry.accepted", "TE-E2"),  # split: accepted with a held part
        ("entry.held", "TE-E3"),
        ("entry.corrected", "TE-E1"),
        ("transaction.released", "TE-E2"),  # room 1000 - 100 = 900: TE-E2's 800 (600.00 more), TE-E3 100.00
        ("transaction.released", "TE-E3"),
        ("entry.voided", "TE-E3"),
    ]
    released = [r["payload"]["amount"] for r in rows if r["event_type"] == "transaction.released"]
    assert released == ["600.00", "100.00"]


async def test_a_line_leads_back_to_its_entry_version_and_request_and_milestones_say_what_they_await(api, keys):
    contract_id = await new_contract(api, keys, tm())
    headers = {**auth(keys["integration"]), "X-Correlation-ID": "psa-batch-42"}
    body = {"source": "kantata", "entries": [time_entry("TE-L1", contract_id, "2026-03-02", "2")]}
    assert (await api.post("/process/v1/time-entries", json=body, headers=headers)).status_code == 200
    body["entries"][0]["hours"] = "3"  # a correction: version 2, 3 x 200.00 = 600.00
    headers["X-Correlation-ID"] = "psa-batch-43"
    assert (await api.post("/process/v1/time-entries", json=body, headers=headers)).status_code == 200
    runs = await api.post(
        "/process/v1/billing-runs",
        json={"as_of": "2026-03-31", "contract_id": contract_id},
        headers=auth(keys["finance"]),
    )
    [invoice] = runs.json()["invoices"]
    [line] = (await api.get(f"/process/v1/invoices/{invoice['id']}", headers=auth(keys["finance"]))).json()["lines"]
    [transaction_id] = line["transaction_ids"]
    lineage = (await api.get(f"/process/v1/transactions/{transaction_id}", headers=auth(keys["finance"]))).json()
    assert lineage["entry"] == {"kind": "time", "source": "kantata", "external_id": "TE-L1", "version": 2}
    assert (lineage["amount"], lineage["status"], lineage["correlation_id"]) == ("600.00", "invoiced", "psa-batch-43")
    entry = await get_entry(api, keys, "TE-L1")
    assert [v["correlation_id"] for v in entry["versions"]] == ["psa-batch-42", "psa-batch-43"]
    other = await api.get(f"/process/v1/transactions/{transaction_id}", headers=auth(keys["customer"]))
    assert other.status_code == 403  # a customer key reaches no REST route

    fixed = await new_contract(api, keys, acme(external_id="800XX0902", number="SOW-L-2"))
    detail = (await api.get(f"/process/v1/contracts/{fixed}", headers=auth(keys["admin"]))).json()
    assert {(m["key"], m["reason"]) for m in detail["milestones"]} == {
        ("M1", "awaiting_milestone_acceptance"),
        ("M2", "awaiting_milestone_acceptance"),
        ("M3", "awaiting_milestone_acceptance"),
    }


async def test_the_seeds_fixed_fee_engagement_time_is_cost_only_and_travel_is_capped_until_co7(api, keys):
    """Acme: 300,000.00 fixed fee, travel reimbursable up to 15,000.00; CO-7 raises it to 20,000.00."""
    contract_id = await new_contract(api, keys, acme(external_id="800XX0903", number="SOW-SEED-1"))
    [time] = await post_time(api, keys, [time_entry("TE-A1", contract_id, "2026-03-02", "8")])
    assert (time["status"], *money(time)) == ("accepted", "non_billable", "0.00", None, ["FIXED_FEE"])
    travel = [
        expense_entry("EX-A1", contract_id, "2026-03-03", "9000.00", "USD"),
        expense_entry("EX-A2", contract_id, "2026-03-10", "7500.00", "USD"),  # 15,000 - 9,000 = 6,000 fits
        expense_entry("EX-A3", contract_id, "2026-03-11", "250.00", "USD", category="meals"),  # not reimbursable
    ]
    results = await post_expenses(api, keys, travel)
    assert [money(r) for r in results] == [
        ("billable", "9000.00", None, []),
        ("billable", "6000.00", "1500.00", ["EXPENSE_CAP_EXCEEDED"]),
        ("non_billable", "0.00", None, ["NOT_REIMBURSABLE"]),
    ]
    # CO-7 (effective 1 June) raises travel to 20,000.00 for all work: EX-A2's 1,500.00 is released.
    co7 = {
        "total_value": "360000.00",
        "add_milestones": [
            {
                "key": "M4",
                "name": "Rollout wave 2",
                "amount": "60000.00",
                "due_date": "2026-11-30",
                "depends_on": ["M3"],
            }
        ],
        "reimbursable_expenses": [{"category": "travel", "cap": "20000.00"}],
    }
    await amend(api, keys, contract_id, 2, "2026-06-01", **co7)
    ex2 = await get_entry(api, keys, "EX-A2", path="/process/v1/expenses")
    assert money(ex2) == ("billable", "7500.00", None, [])
    assert sorted((t["kind"], t["amount"]) for t in ex2["transactions"]) == [
        ("expense", "6000.00"),
        ("release", "1500.00"),
    ]


async def test_a_batch_over_capped_and_uncapped_contracts_answers_in_list_order(api, keys):
    """The capped part settles in its own transaction: results still come back in list order, and
    the same external id twice still counts in list order."""
    capped = await new_contract(api, keys, tm(time_cap="300.00"))
    free = await new_contract(api, keys, tm())
    await post_time(api, keys, [time_entry("TE-M0", capped, "2026-03-01", "1")])  # 200.00 of the 300.00
    results = await post_time(
        api,
        keys,
        [
            time_entry("TE-M1", capped, "2026-03-02", "1"),  # 100.00 fits, 100.00 held
            time_entry("TE-M2", free, "2026-03-02", "3"),  # 600.00
            {"external_id": "TE-M0", "void": True},  # frees 200.00 of the cap: TE-M1 fits whole
            time_entry("TE-M2", free, "2026-03-02", "3"),  # the same again: a duplicate
            time_entry("TE-M1", capped, "2026-03-02", "1.5"),  # a correction: 300.00, all of the cap
        ],
    )
    assert [(r["external_id"], r["status"]) for r in results] == [
        ("TE-M1", "accepted"),
        ("TE-M2", "accepted"),
        ("TE-M0", "voided"),
        ("TE-M2", "duplicate"),
        ("TE-M1", "corrected"),
    ]
    # Every result is the entry's state after the whole request.
    assert money(results[0]) == money(results[4]) == ("billable", "300.00", None, [])
    assert money(results[1]) == money(results[3]) == ("billable", "600.00", None, [])
    assert money(results[2]) == ("non_billable", "0.00", None, ["VOIDED"])
