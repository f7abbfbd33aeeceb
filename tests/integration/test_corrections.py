"""Corrections and voids after invoicing (DESIGN.md "Billing semantics", "Edge rules"): an adjustment
of new value - invoiced value dated on the new work date, billed in the next run on an adjustment
line; credits and credit notes (creditMemo in the ERP); a later correction replaces a pending
adjustment; zero deltas make none; a void is a full credit; nothing is billed twice.
Acme T&M: consultant 200.00 an hour, US01 selling in New York at 8.875 %."""

from __future__ import annotations

from decimal import Decimal

from tests.work import (
    EXPENSES,
    amend,
    billing_run,
    expense,
    get_entry,
    get_invoice,
    new_contract,
    one_time,
    pending,
    post_expenses,
    set_fx,
    time_entry,
    tm,
    void,
)


def after(result: dict) -> tuple:
    """(status, billing, amount, adjustment_amount, codes) of a result."""
    return result["status"], result["billing"], result["amount"], result["adjustment_amount"], result["codes"]


async def invoiced_entry(api, keys) -> tuple[str, dict]:  # noqa: ANN001
    """TE-1, 8 h on 2026-03-02 = 1,600.00, invoiced by a run as of 2026-03-31."""
    contract_id = await new_contract(api, keys, tm())
    await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "8"))
    [invoice] = await billing_run(api, keys, "2026-03-31", contract_id)
    return contract_id, invoice


async def test_a_correction_after_invoicing_bills_the_difference_on_an_adjustment_line(api, keys):
    contract_id, first = await invoiced_entry(api, keys)
    # 1600.00 x 8.875 % = 142.00
    assert (first["net"], first["tax"], first["total"]) == ("1600.00", "142.00", "1742.00")

    # 10 h on 2026-04-02 = 2000.00; the invoiced 1600.00 stays: adjustment 2000 - 1600 = +400.00 dated 04-02.
    corrected = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-04-02", "10"))
    assert after(corrected) == ("corrected", "billable", "2000.00", "400.00", [])
    entry = await get_entry(api, keys, "TE-1")
    assert pending(entry) == [
        ("adjustment", "400.00", "2026-04-02", "unbilled", "awaiting_billing_run"),
        ("time", "1600.00", "2026-03-02", "invoiced", None),
    ]
    adjustment_id = next(t["id"] for t in entry["transactions"] if t["kind"] == "adjustment")

    assert await billing_run(api, keys, "2026-03-31", contract_id) == []  # dated 04-02: not yet
    [second] = await billing_run(api, keys, "2026-04-30", contract_id)
    # 400.00 x 8.875 % = 35.50; total 435.50
    assert (second["kind"], second["net"], second["tax"], second["total"]) == ("invoice", "400.00", "35.50", "435.50")
    [line] = (await get_invoice(api, keys, second["id"]))["lines"]
    assert line["kind"] == "time" and line["transaction_ids"] == [adjustment_id] and line["net"] == "400.00"
    assert "adjust" in f"{line['key']} {line['description']}".lower()
    billed = await get_entry(api, keys, "TE-1")
    assert {(t["kind"], t["amount"], t["status"]) for t in billed["transactions"]} == {
        ("time", "1600.00", "invoiced"),
        ("adjustment", "400.00", "invoiced"),
    }


async def test_a_negative_adjustment_alone_is_a_credit_note_posted_as_a_credit_memo(api, keys, run_jobs, sandbox):
    contract_id, first = await invoiced_entry(api, keys)
    await run_jobs()
    assert (await get_invoice(api, keys, first["id"]))["status"] == "posted"

    # 6 h = 1200.00: adjustment 1200 - 1600 = -400.00, dated 03-02.
    corrected = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "6"))
    assert after(corrected) == ("corrected", "billable", "1200.00", "-400.00", [])
    [credit] = await billing_run(api, keys, "2026-03-31", contract_id)
    # -400.00 x 8.875 % = -35.50; total -435.50
    assert (credit["kind"], credit["net"], credit["tax"], credit["total"]) == (
        "credit_note",
        "-400.00",
        "-35.50",
        "-435.50",
    )
    await run_jobs()
    posted = await get_invoice(api, keys, credit["id"])
    assert posted["status"] == "posted" and posted["erp_ref"]
    memo = await sandbox.get(f"/erp/services/rest/record/v1/creditMemo/eid:{credit['id']}")
    assert memo.status_code == 200, memo.text
    assert memo.json()["id"] == posted["erp_ref"]
    assert abs(Decimal(memo.json()["total"])) == Decimal("435.50")
    not_an_invoice = await sandbox.get(f"/erp/services/rest/record/v1/invoice/eid:{credit['id']}")
    assert not_an_invoice.status_code == 404


async def test_a_credit_rounds_its_tax_half_away_from_zero(api, keys):
    contract_id, _ = await invoiced_entry(api, keys)
    # 0.5 h = 100.00: adjustment 100 - 1600 = -1500.00; tax -1500.00 x 8.875 % = -133.125 -> -133.13
    # (ties away from zero, also for negatives; half-even would say -133.12); total -1633.13
    await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "0.5"))
    [credit] = await billing_run(api, keys, "2026-03-31", contract_id)
    assert (credit["kind"], credit["net"], credit["tax"], credit["total"]) == (
        "credit_note",
        "-1500.00",
        "-133.13",
        "-1633.13",
    )


async def test_a_second_correction_replaces_the_pending_adjustment(api, keys):
    contract_id, _ = await invoiced_entry(api, keys)
    up = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "10"))
    assert after(up) == ("corrected", "billable", "2000.00", "400.00", [])  # 2000 - 1600
    less = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "9"))
    assert after(less) == ("corrected", "billable", "1800.00", "200.00", [])  # 1800 - 1600, not 400 + 200
    entry = await get_entry(api, keys, "TE-1")
    assert [t["amount"] for t in entry["transactions"] if t["kind"] == "adjustment"] == ["200.00"]
    [second] = await billing_run(api, keys, "2026-03-31", contract_id)
    assert second["net"] == "200.00"


async def test_a_correction_to_the_same_value_after_invoicing_makes_no_adjustment(api, keys):
    contract_id, _ = await invoiced_entry(api, keys)
    text = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "8", description="Workshop (2)"))
    assert after(text) == ("corrected", "billable", "1600.00", None, [])  # 8 x 200.00 - 1600.00 = 0
    moved = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-03", "8"))
    assert after(moved) == ("corrected", "billable", "1600.00", None, [])  # same rate on 03-03: still 0
    entry = await get_entry(api, keys, "TE-1")
    assert [t["kind"] for t in entry["transactions"]] == ["time"]
    assert len(entry["versions"]) == 3
    assert await billing_run(api, keys, "2026-03-31", contract_id) == []


async def test_a_void_after_invoicing_is_a_full_credit(api, keys):
    contract_id, _ = await invoiced_entry(api, keys)
    voided = await void(api, keys, "TE-1")
    assert voided.status_code == 200, voided.text
    # new value 0: adjustment 0 - 1600 = -1600.00; amount = 1600.00 invoiced - 1600.00 = 0.00
    assert after(voided.json()) == ("voided", "non_billable", "0.00", "-1600.00", ["VOIDED"])
    [credit] = await billing_run(api, keys, "2026-03-31", contract_id)
    # -1600.00 x 8.875 % = -142.00; total -1742.00
    assert (credit["kind"], credit["net"], credit["tax"], credit["total"]) == (
        "credit_note",
        "-1600.00",
        "-142.00",
        "-1742.00",
    )
    entry = await get_entry(api, keys, "TE-1")
    assert sorted((t["kind"], t["amount"], t["status"]) for t in entry["transactions"]) == [
        ("adjustment", "-1600.00", "invoiced"),
        ("time", "1600.00", "invoiced"),
    ]


async def test_a_correction_leaving_no_value_is_a_full_credit(api, keys):
    contract_id, _ = await invoiced_entry(api, keys)
    # A role without a rate: held without value, so new value 0 and adjustment 0 - 1600 = -1600.00.
    unrated = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "8", role="designer"))
    assert (unrated["status"], unrated["amount"], unrated["adjustment_amount"], unrated["codes"]) == (
        "corrected",
        "0.00",
        "-1600.00",
        ["RATE_NOT_FOUND"],
    )
    [credit] = await billing_run(api, keys, "2026-03-31", contract_id)
    assert (credit["kind"], credit["net"]) == ("credit_note", "-1600.00")


async def test_amendments_never_adjust_but_a_later_correction_uses_the_rules_in_force_now(api, keys):
    contract_id = await new_contract(api, keys, tm())
    await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "8"))  # 8 x 200.00 = 1600.00
    [first] = await billing_run(api, keys, "2026-03-02", contract_id)
    assert first["net"] == "1600.00"
    await one_time(api, keys, time_entry("TE-2", contract_id, "2026-03-05", "2"))  # 2 x 200.00 = 400.00

    # Consultant 250.00 from 2026-03-01, before both work dates.
    await amend(
        api,
        keys,
        contract_id,
        2,
        "2026-03-01",
        rate_card=[{"role": "consultant", "rate": "250.00", "effective_from": "2026-03-01"}],
    )
    te1 = await get_entry(api, keys, "TE-1")  # invoiced: stays as invoiced, no adjustment
    assert (te1["amount"], te1["adjustment_amount"]) == ("1600.00", None)
    assert [t["kind"] for t in te1["transactions"]] == ["time"]
    te2 = await get_entry(api, keys, "TE-2")  # not invoiced: re-priced, 2 x 250.00
    assert te2["amount"] == "500.00"

    # Any correction of TE-1 re-prices it under the rules now: 8 x 250.00 = 2000.00, adjustment +400.00.
    noted = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "8", description="Workshop day"))
    assert after(noted) == ("corrected", "billable", "2000.00", "400.00", [])
    [second] = await billing_run(api, keys, "2026-03-31", contract_id)
    assert second["net"] == "900.00"  # TE-2 500.00 + TE-1's adjustment 400.00


async def test_no_hour_is_billed_twice_across_corrections_voids_and_runs(api, keys):
    contract_id, first = await invoiced_entry(api, keys)  # 8 h: 1600.00
    nets = [Decimal(first["net"])]

    await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "10"))  # 2000 - 1600 = +400
    [run] = await billing_run(api, keys, "2026-03-31", contract_id)
    nets.append(Decimal(run["net"]))
    assert run["net"] == "400.00"

    await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "7"))  # 1400 - 2000 = -600
    last = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "7.5"))  # 1500 - 2000 = -500
    assert (last["amount"], last["adjustment_amount"]) == ("1500.00", "-500.00")
    [run] = await billing_run(api, keys, "2026-03-31", contract_id)
    nets.append(Decimal(run["net"]))
    assert (run["kind"], run["net"]) == ("credit_note", "-500.00")

    # Void (0 - 1500 = -1500 pending), then re-send 7.5 h: a correction of the void, 1500 - 1500 = 0.
    await void(api, keys, "TE-1")
    back = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "7.5"))
    assert after(back) == ("corrected", "billable", "1500.00", None, [])
    assert await billing_run(api, keys, "2026-03-31", contract_id) == []

    # 1600 + 400 - 500 = 1500 = 7.5 h x 200.00, the latest version's value.
    assert sum(nets) == Decimal("1500.00") == Decimal((await get_entry(api, keys, "TE-1"))["amount"])


async def test_money_on_a_blocked_invoice_counts_as_invoiced(api, keys):
    # Lumière (FR) billed by DE01 without a VAT id: the tax API refuses, the invoice is blocked.
    contract_id = await new_contract(
        api,
        keys,
        tm(
            legal_entity="DE01",
            currency="EUR",
            customer={"external_id": "LUMIERE-001", "name": "Lumière SA"},
            tax={"jurisdiction": "FR", "customer_tax_id": None},
            reimbursable_expenses=[],
        ),
    )
    await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "8"))  # 8 x 200.00 = 1600.00
    [blocked] = await billing_run(api, keys, "2026-03-31", contract_id)
    assert (blocked["status"], blocked["net"], blocked["tax"], blocked["total"]) == ("blocked", "1600.00", None, None)
    entry = await get_entry(api, keys, "TE-1")
    [original] = entry["transactions"]
    assert (original["invoice_id"], original["reason"]) == (blocked["id"], "invoice_blocked")

    # 9 h = 1800.00: the 1600.00 is on an invoice (blocked included), so this is an adjustment of +200.00.
    corrected = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "9"))
    assert (corrected["currency"], *after(corrected)) == ("EUR", "corrected", "billable", "1800.00", "200.00", [])
    [second] = await billing_run(api, keys, "2026-03-31", contract_id)
    assert second["net"] == "200.00"


async def test_an_expense_correction_after_invoicing_reconverts_at_the_new_days_rate(api, keys, sandbox):
    contract_id = await new_contract(
        api,
        keys,
        tm(
            legal_entity="GB01",
            currency="GBP",
            customer={"external_id": "TYRELL-UK-001", "name": "Tyrell UK Ltd"},
            tax={"jurisdiction": "GB", "customer_tax_id": None},
            rate_card=[{"role": "consultant", "rate": "150.00", "effective_from": "2026-01-05"}],
            reimbursable_expenses=[{"category": "travel", "cap": "5000.00"}],
        ),
    )
    await set_fx(sandbox, "2026-03-02", "EUR", "GBP", "0.8571")
    await set_fx(sandbox, "2026-03-03", "EUR", "GBP", "0.85")
    [first] = await post_expenses(api, keys, [expense("EX-1", contract_id, "2026-03-02", "100.00", "EUR")])
    assert first["amount"] == "85.71"  # 100.00 x 0.8571
    [invoice] = await billing_run(api, keys, "2026-03-31", contract_id)
    assert invoice["net"] == "85.71"

    # 120.00 EUR on 03-03 at 0.85 = 102.00; adjustment 102.00 - 85.71 = +16.29, dated 03-03.
    [corrected] = await post_expenses(api, keys, [expense("EX-1", contract_id, "2026-03-03", "120.00", "EUR")])
    assert (corrected["status"], corrected["amount"], corrected["adjustment_amount"]) == (
        "corrected",
        "102.00",
        "16.29",
    )
    entry = await get_entry(api, keys, "EX-1", path=EXPENSES)
    assert ("adjustment", "16.29", "2026-03-03", "unbilled", "awaiting_billing_run") in pending(entry)
    [second] = await billing_run(api, keys, "2026-03-31", contract_id)
    # 16.29 x 20 % = 3.258 -> 3.26; total 19.55
    assert (second["net"], second["tax"], second["total"]) == ("16.29", "3.26", "19.55")
    [line] = (await get_invoice(api, keys, second["id"]))["lines"]
    assert line["kind"] == "expense" and "adjust" in f"{line['key']} {line['description']}".lower()
