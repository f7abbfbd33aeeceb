"""Caps through the API (DESIGN.md "Billing semantics"): deterministic allocation in work-date order,
ties by external id by code point then source, splits, releases on a correction, an amendment or a
void, expense allowances per category, and adjustments competing for room. Consultant time is
200.00 an hour, so 8 hours = 1,600.00; every amount is worked out by hand."""

from __future__ import annotations

import asyncio

from tests.factories import auth
from tests.work import (
    amend,
    billing_run,
    exceptions,
    expense,
    get_entry,
    get_invoice,
    money,
    new_contract,
    one_time,
    post_expenses,
    post_raw,
    post_time,
    state,
    time_entry,
    tm,
    void,
)

HELD_CAP = ("held", "held", "0.00", "1600.00", ["CAP_EXCEEDED"])
FULL = ("accepted", "billable", "1600.00", None, [])

# Cap 2,500.00 over four 8-hour entries, allocated TE-10, TE-9 (2026-03-02: "TE-10" < "TE-9" by code
# point), TE-2 (03-03), TE-1 (03-04): TE-10 1,600.00 (900.00 left), TE-9 900.00 + 700.00 held, the
# others held whole.
FINAL = {
    "TE-10": ("billable", "1600.00", None, []),
    "TE-9": ("billable", "900.00", "700.00", ["CAP_EXCEEDED"]),
    "TE-2": ("held", "0.00", "1600.00", ["CAP_EXCEEDED"]),
    "TE-1": ("held", "0.00", "1600.00", ["CAP_EXCEEDED"]),
}


def four(contract_id: str) -> dict[str, dict]:
    return {
        "TE-1": time_entry("TE-1", contract_id, "2026-03-04", "8"),
        "TE-2": time_entry("TE-2", contract_id, "2026-03-03", "8"),
        "TE-9": time_entry("TE-9", contract_id, "2026-03-02", "8"),
        "TE-10": time_entry("TE-10", contract_id, "2026-03-02", "8"),
    }


def amounts(entry: dict) -> list[tuple]:
    return sorted((t["kind"], t["amount"], t["status"], t["reason"]) for t in entry["transactions"])


async def test_a_batch_crossing_the_time_cap_splits_the_straddling_entry_and_holds_the_rest(api, keys):
    contract_id = await new_contract(api, keys, tm(time_cap="2500.00"))
    entries = four(contract_id)
    results = await post_time(api, keys, [entries[k] for k in ("TE-1", "TE-2", "TE-9", "TE-10")])
    assert {r["external_id"]: state(r) for r in results} == {
        "TE-1": HELD_CAP,
        "TE-2": HELD_CAP,
        "TE-9": ("accepted", "billable", "900.00", "700.00", ["CAP_EXCEEDED"]),  # 2500 - 1600 = 900 fits
        "TE-10": FULL,
    }
    straddler = await get_entry(api, keys, "TE-9")
    assert sorted((t["amount"], t["status"], t["reason"]) for t in straddler["transactions"]) == [
        ("700.00", "held", "cap_reached"),
        ("900.00", "unbilled", "awaiting_billing_run"),
    ]
    [exception] = await exceptions(api, keys, "CAP_EXCEEDED")
    assert exception["queue"] == "finance" and exception["status"] == "open"
    [invoice] = await billing_run(api, keys, "2026-03-31", contract_id)
    assert invoice["net"] == "2500.00"  # 1600.00 + 900.00: exactly the cap


async def test_arrival_order_and_request_boundaries_do_not_change_the_allocation(api, keys):
    latest_first = await new_contract(api, keys, tm(time_cap="2500.00"))
    entries = four(latest_first)
    # One at a time, latest date first: each arrival with an earlier date takes room from later ones.
    assert state(await one_time(api, keys, entries["TE-1"])) == FULL  # room 2500: TE-1 1600
    assert state(await one_time(api, keys, entries["TE-2"])) == FULL  # TE-2 1600, TE-1 900 + 700 held
    assert money(await get_entry(api, keys, "TE-1")) == ("billable", "900.00", "700.00", ["CAP_EXCEEDED"])
    assert state(await one_time(api, keys, entries["TE-9"])) == FULL  # TE-9 1600, TE-2 900 + 700, TE-1 held
    assert state(await one_time(api, keys, entries["TE-10"])) == FULL  # TE-10 before TE-9 by code point
    assert {k: money(await get_entry(api, keys, k)) for k in FINAL} == FINAL

    earliest_first = await new_contract(api, keys, tm(time_cap="2500.00"))
    entries = four(earliest_first)
    for external_id in ("TE-10", "TE-9", "TE-2", "TE-1"):
        await post_time(api, keys, [entries[external_id]], source="harvest")
    assert {k: money(await get_entry(api, keys, k, source="harvest")) for k in FINAL} == FINAL


async def test_an_earlier_entry_arriving_later_takes_room_but_never_invoiced_money(api, keys):
    contract_id = await new_contract(api, keys, tm(time_cap="2500.00"))
    await one_time(api, keys, time_entry("TE-A", contract_id, "2026-03-10", "8"))  # 1600
    b = await one_time(api, keys, time_entry("TE-B", contract_id, "2026-03-11", "8"))
    assert state(b) == ("accepted", "billable", "900.00", "700.00", ["CAP_EXCEEDED"])  # 2500 - 1600 = 900
    c = await one_time(api, keys, time_entry("TE-C", contract_id, "2026-03-02", "8"))
    assert state(c) == FULL  # 03-02 comes first: TE-C 1600, TE-A 900 + 700, TE-B held
    assert money(await get_entry(api, keys, "TE-A")) == ("billable", "900.00", "700.00", ["CAP_EXCEEDED"])
    assert money(await get_entry(api, keys, "TE-B")) == ("held", "0.00", "1600.00", ["CAP_EXCEEDED"])
    [invoice] = await billing_run(api, keys, "2026-03-31", contract_id)
    assert invoice["net"] == "2500.00"  # TE-C 1600.00 + TE-A 900.00

    # Room is the cap minus invoiced money: 2500 - 2500 = 0. An even earlier entry cannot displace it.
    d = await one_time(api, keys, time_entry("TE-D", contract_id, "2026-03-01", "8"))
    assert state(d) == HELD_CAP
    assert money(await get_entry(api, keys, "TE-C")) == ("billable", "1600.00", None, [])
    assert await billing_run(api, keys, "2026-03-31", contract_id) == []


async def test_a_correction_downwards_releases_held_amounts_in_work_date_order(api, keys):
    contract_id = await new_contract(api, keys, tm(time_cap="2500.00"))
    results = await post_time(
        api,
        keys,
        [
            time_entry("TE-1", contract_id, "2026-03-02", "8"),  # 1600
            time_entry("TE-2", contract_id, "2026-03-03", "8"),  # 900 + 700 held
            time_entry("TE-3", contract_id, "2026-03-04", "8"),  # 1600 held
        ],
    )
    assert [state(r) for r in results] == [
        FULL,
        ("accepted", "billable", "900.00", "700.00", ["CAP_EXCEEDED"]),
        HELD_CAP,
    ]
    # TE-1 down to 4 h = 800.00: room 2500 - 800 = 1700 -> TE-2 gets its 700 (1600 in all, 100 left),
    # then TE-3 gets 100 and 1500 stays held.
    corrected = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "4"))
    assert state(corrected) == ("corrected", "billable", "800.00", None, [])
    te2 = await get_entry(api, keys, "TE-2")
    assert money(te2) == ("billable", "1600.00", None, [])
    assert amounts(te2) == [
        ("release", "700.00", "unbilled", "awaiting_billing_run"),
        ("time", "900.00", "unbilled", "awaiting_billing_run"),
    ]
    assert {t["date"] for t in te2["transactions"]} == {"2026-03-03"}  # a release carries its entry's date
    te3 = await get_entry(api, keys, "TE-3")
    assert money(te3) == ("billable", "100.00", "1500.00", ["CAP_EXCEEDED"])
    assert [(t["amount"], t["status"]) for t in te3["transactions"] if t["kind"] == "release"] == [
        ("100.00", "unbilled")
    ]
    assert [(t["amount"], t["reason"]) for t in te3["transactions"] if t["status"] == "held"] == [
        ("1500.00", "cap_reached")
    ]
    [invoice] = await billing_run(api, keys, "2026-03-31", contract_id)
    assert invoice["net"] == "2500.00"  # 800.00 + 1600.00 + 100.00


async def test_an_amendment_raising_the_cap_releases_and_the_next_run_invoices_the_releases(api, keys):
    contract_id = await new_contract(api, keys, tm(time_cap="2500.00"))
    await post_time(
        api,
        keys,
        [
            time_entry("TE-1", contract_id, "2026-03-02", "8"),  # 1600
            time_entry("TE-2", contract_id, "2026-03-03", "8"),  # 900 + 700 held
            time_entry("TE-3", contract_id, "2026-03-04", "8"),  # 1600 held
        ],
    )
    [first] = await billing_run(api, keys, "2026-03-31", contract_id)
    assert first["net"] == "2500.00"

    # Cap 4000: room 4000 - 2500 invoiced = 1500 -> TE-2's 700, then 800 of TE-3 (800 stays held).
    raise_cap = {"version": 2, "effective_date": "2026-04-01", "changes": {"time_cap": "4000.00"}}
    preview = await api.post(
        f"/process/v1/contracts/{contract_id}/amendments?dry_run=true",
        json=raise_cap,
        headers=auth(keys["integration"]),
    )
    assert preview.status_code == 200, preview.text
    impact = preview.json()
    assert sorted((r["external_id"], r["amount"]) for r in impact["released"]) == [
        ("TE-2", "700.00"),
        ("TE-3", "800.00"),
    ]
    assert impact["held"] == {"before": "2300.00", "after": "800.00"}  # 700 + 1600 -> 800
    assert impact["unbilled"] == {"before": "0.00", "after": "1500.00"}
    assert money(await get_entry(api, keys, "TE-2")) == ("billable", "900.00", "700.00", ["CAP_EXCEEDED"])
    await amend(api, keys, contract_id, 2, "2026-04-01", time_cap="4000.00")
    te2 = await get_entry(api, keys, "TE-2")
    assert money(te2) == ("billable", "1600.00", None, [])
    releases = [t for t in te2["transactions"] if t["kind"] == "release"]
    assert [(t["amount"], t["status"], t["date"]) for t in releases] == [("700.00", "unbilled", "2026-03-03")]
    te3 = await get_entry(api, keys, "TE-3")
    assert money(te3) == ("billable", "800.00", "800.00", ["CAP_EXCEEDED"])
    release_ids = {releases[0]["id"]} | {t["id"] for t in te3["transactions"] if t["kind"] == "release"}

    [second] = await billing_run(api, keys, "2026-03-31", contract_id)
    # 700.00 + 800.00 = 1500.00; tax 1500.00 x 8.875 % = 133.125 -> 133.13; total 1633.13
    assert (second["net"], second["tax"], second["total"]) == ("1500.00", "133.13", "1633.13")
    lines = (await get_invoice(api, keys, second["id"]))["lines"]
    assert len(lines) == 1 and set(lines[0]["transaction_ids"]) == release_ids  # a release is on its entry's line

    # No cap at all: TE-3's last 800.00 is released.
    await amend(api, keys, contract_id, 3, "2026-05-01", time_cap=None)
    assert money(await get_entry(api, keys, "TE-3")) == ("billable", "1600.00", None, [])
    [third] = await billing_run(api, keys, "2026-03-31", contract_id)
    assert third["net"] == "800.00"
    [exception] = await exceptions(api, keys, "CAP_EXCEEDED")
    assert exception["status"] == "resolved"  # nothing is held for the cap any more


async def test_expense_allowances_cap_each_category_and_not_time(api, keys):
    contract_id = await new_contract(
        api,
        keys,
        tm(
            time_cap="1000.00",
            reimbursable_expenses=[{"category": "travel", "cap": "1000.00"}, {"category": "meals", "cap": "100.00"}],
        ),
    )
    [time_result] = await post_time(api, keys, [time_entry("TE-1", contract_id, "2026-03-02", "5")])
    assert state(time_result) == ("accepted", "billable", "1000.00", None, [])  # 5 x 200.00 = the time cap
    results = await post_expenses(
        api,
        keys,
        [
            expense("EX-5", contract_id, "2026-03-05", "50.00", "USD"),
            expense("EX-4", contract_id, "2026-03-04", "30.00", "USD", category="meals"),
            expense("EX-3", contract_id, "2026-03-03", "80.00", "USD", category="meals"),
            expense("EX-2", contract_id, "2026-03-03", "500.00", "USD"),
            expense("EX-1", contract_id, "2026-03-02", "600.00", "USD"),
        ],
    )
    assert {r["external_id"]: state(r) for r in results} == {
        # travel, cap 1000: EX-1 600 (400 left), EX-2 400 + 100 held, EX-5 held whole
        "EX-1": ("accepted", "billable", "600.00", None, []),
        "EX-2": ("accepted", "billable", "400.00", "100.00", ["EXPENSE_CAP_EXCEEDED"]),
        "EX-5": ("held", "held", "0.00", "50.00", ["EXPENSE_CAP_EXCEEDED"]),
        # meals, cap 100: EX-3 80 (20 left), EX-4 20 + 10 held
        "EX-3": ("accepted", "billable", "80.00", None, []),
        "EX-4": ("accepted", "billable", "20.00", "10.00", ["EXPENSE_CAP_EXCEEDED"]),
    }
    assert {r["external_id"]: r["converted_amount"] for r in results}["EX-1"] == "600.00"
    assert money(await get_entry(api, keys, "TE-1")) == ("billable", "1000.00", None, [])  # expenses use no time cap
    held = await get_entry(api, keys, "EX-5", path="/process/v1/expenses")
    assert [(t["amount"], t["status"], t["reason"]) for t in held["transactions"]] == [
        ("50.00", "held", "expense_cap_reached")
    ]
    [exception] = await exceptions(api, keys, "EXPENSE_CAP_EXCEEDED")
    assert exception["queue"] == "finance"
    [invoice] = await billing_run(api, keys, "2026-03-31", contract_id)
    assert invoice["net"] == "2100.00"  # time 1000 + travel 600 + 400 + meals 80 + 20


async def test_a_void_frees_room(api, keys):
    contract_id = await new_contract(api, keys, tm(time_cap="2500.00"))
    await post_time(
        api,
        keys,
        [time_entry("TE-1", contract_id, "2026-03-02", "8"), time_entry("TE-2", contract_id, "2026-03-03", "8")],
    )
    assert money(await get_entry(api, keys, "TE-2")) == ("billable", "900.00", "700.00", ["CAP_EXCEEDED"])
    voided = await void(api, keys, "TE-1")
    assert voided.status_code == 200 and state(voided.json()) == ("voided", "non_billable", "0.00", None, ["VOIDED"])
    te2 = await get_entry(api, keys, "TE-2")  # room 2500 - 0 = 2500: TE-2's 700 is released
    assert money(te2) == ("billable", "1600.00", None, [])
    assert ("release", "700.00", "unbilled", "awaiting_billing_run") in amounts(te2)
    [invoice] = await billing_run(api, keys, "2026-03-31", contract_id)
    assert invoice["net"] == "1600.00"


async def test_ties_compare_external_ids_by_code_point_then_source(api, keys):
    by_source = await new_contract(api, keys, tm(time_cap="2000.00"))
    await one_time(api, keys, time_entry("TE-5", by_source, "2026-03-02", "8"))  # kantata first: 1600
    [harvest] = await post_time(api, keys, [time_entry("TE-5", by_source, "2026-03-02", "8")], source="harvest")
    assert state(harvest) == FULL  # "harvest" < "kantata": harvest 1600, kantata 400 + 1200 held
    assert money(await get_entry(api, keys, "TE-5")) == ("billable", "400.00", "1200.00", ["CAP_EXCEEDED"])

    by_code_point = await new_contract(api, keys, tm(time_cap="2000.00"))
    await one_time(api, keys, time_entry("te-1", by_code_point, "2026-03-02", "8"))  # 1600
    assert state(await one_time(api, keys, time_entry("TE-9", by_code_point, "2026-03-02", "8"))) == FULL
    # "TE-9" < "te-1" by code point ("T" is 0x54, "t" 0x74), whatever a locale's collation says.
    assert money(await get_entry(api, keys, "te-1")) == ("billable", "400.00", "1200.00", ["CAP_EXCEEDED"])


async def test_a_positive_adjustment_competes_for_room_and_a_negative_one_frees_it(api, keys):
    contract_id = await new_contract(api, keys, tm(time_cap="2500.00"))
    await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "8"))  # 1600
    [first] = await billing_run(api, keys, "2026-03-02", contract_id)
    assert first["net"] == "1600.00"
    te2 = await one_time(api, keys, time_entry("TE-2", contract_id, "2026-03-05", "4"))
    assert state(te2) == ("accepted", "billable", "800.00", None, [])  # room 2500 - 1600 = 900: fits

    # TE-1 to 10 h = 2000.00: adjustment +400.00 dated 03-02, ahead of TE-2 (03-05) for the 900 of room:
    # the adjustment takes 400, TE-2 keeps 500 and 300 is held.
    up = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "10"))
    assert (up["status"], up["billing"], up["amount"], up["adjustment_amount"], up["held_amount"]) == (
        "corrected",
        "billable",
        "2000.00",  # invoiced 1600.00 + pending adjustment 400.00
        "400.00",
        None,
    )
    assert money(await get_entry(api, keys, "TE-2")) == ("billable", "500.00", "300.00", ["CAP_EXCEEDED"])

    # TE-1 to 4 h = 800.00: the pending adjustment becomes 800 - 1600 = -800.00, never held, and it frees
    # room at once: 2500 - 1600 + 800 = 1700 >= TE-2's 800, so TE-2 is whole again.
    down = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "4"))
    assert (down["amount"], down["adjustment_amount"], down["held_amount"]) == ("800.00", "-800.00", None)
    assert money(await get_entry(api, keys, "TE-2")) == ("billable", "800.00", None, [])
    [second] = await billing_run(api, keys, "2026-03-31", contract_id)
    # time line 800.00 (500 + released 300), adjustment line -800.00: net 0.00, an invoice of zero;
    # tax 800 x 8.875 % = 71.00 and -800 x 8.875 % = -71.00
    assert (second["kind"], second["net"], second["tax"], second["total"]) == ("invoice", "0.00", "0.00", "0.00")


async def test_a_pending_credit_outside_the_batch_frees_room_for_later_batches(api, keys):
    contract_id = await new_contract(api, keys, tm(time_cap="2500.00"))
    await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "8"))  # 1600
    await billing_run(api, keys, "2026-03-02", contract_id)
    down = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "4"))
    assert down["adjustment_amount"] == "-800.00"  # pending: 800 - 1600 invoiced
    # Room: 2500 - 1600 invoiced + 800 freed by the pending credit = 1700. TE-2 (03-05) 1000 fits.
    te2 = await one_time(api, keys, time_entry("TE-2", contract_id, "2026-03-05", "5"))
    assert state(te2) == ("accepted", "billable", "1000.00", None, [])
    # TE-3 (03-04) goes before TE-2: it takes 800 of the 1700, TE-2 keeps 900 and 100 is held.
    te3 = await one_time(api, keys, time_entry("TE-3", contract_id, "2026-03-04", "4"))
    assert state(te3) == ("accepted", "billable", "800.00", None, [])
    assert money(await get_entry(api, keys, "TE-2")) == ("billable", "900.00", "100.00", ["CAP_EXCEEDED"])


async def test_concurrent_requests_end_in_the_deterministic_allocation(api, keys):
    contract_id = await new_contract(api, keys, tm(time_cap="5000.00"))
    # Sixteen 2-hour entries (2 x 200.00 = 400.00 each) on sixteen days, each in its own request, all at
    # once, latest first. In work-date order: 12 x 400 = 4800 fit, the 13th gets 200 (200 held), the rest
    # are held whole.
    days = [f"2026-03-{d:02d}" for d in range(2, 18)]
    entries = [time_entry(f"TE-{day}", contract_id, day, "2") for day in days]
    responses = await asyncio.gather(*(post_raw(api, keys["integration"], [entry]) for entry in reversed(entries)))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses if r.status_code != 200]
    got = [money(await get_entry(api, keys, f"TE-{day}")) for day in days]
    assert got == [("billable", "400.00", None, [])] * 12 + [
        ("billable", "200.00", "200.00", ["CAP_EXCEEDED"]),
        ("held", "0.00", "400.00", ["CAP_EXCEEDED"]),
        ("held", "0.00", "400.00", ["CAP_EXCEEDED"]),
        ("held", "0.00", "400.00", ["CAP_EXCEEDED"]),
    ]
    [invoice] = await billing_run(api, keys, "2026-03-31", contract_id)
    assert invoice["net"] == "5000.00"  # exactly the cap


async def test_a_lower_cap_by_amendment_holds_unbilled_work_but_never_touches_invoiced_money(api, keys):
    contract_id = await new_contract(api, keys, tm())  # no cap
    await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "8"))  # 1600
    [invoice] = await billing_run(api, keys, "2026-03-02", contract_id)
    assert invoice["net"] == "1600.00"
    await post_time(
        api,
        keys,
        [time_entry("TE-2", contract_id, "2026-03-03", "8"), time_entry("TE-3", contract_id, "2026-03-04", "8")],
    )
    # Cap 2500 from version 2 governs all work: room 2500 - 1600 invoiced = 900 -> TE-2 900 + 700, TE-3 held.
    await amend(api, keys, contract_id, 2, "2026-06-01", time_cap="2500.00")
    assert money(await get_entry(api, keys, "TE-2")) == ("billable", "900.00", "700.00", ["CAP_EXCEEDED"])
    assert money(await get_entry(api, keys, "TE-3")) == ("held", "0.00", "1600.00", ["CAP_EXCEEDED"])
    # Cap 1000, below what is invoiced: room is none, everything unbilled is held, the invoice stands.
    await amend(api, keys, contract_id, 3, "2026-06-01", time_cap="1000.00")
    te1 = await get_entry(api, keys, "TE-1")
    assert (te1["amount"], te1["held_amount"], te1["adjustment_amount"]) == ("1600.00", None, None)
    assert money(await get_entry(api, keys, "TE-2")) == ("held", "0.00", "1600.00", ["CAP_EXCEEDED"])
    assert await billing_run(api, keys, "2026-03-31", contract_id) == []


async def test_a_positive_adjustment_that_does_not_fit_is_split_like_any_amount(api, keys):
    contract_id = await new_contract(api, keys, tm(time_cap="2000.00"))
    await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "8"))  # 1600
    [first] = await billing_run(api, keys, "2026-03-31", contract_id)
    assert first["net"] == "1600.00"
    # 12 h = 2400.00: adjustment 2400 - 1600 = +800.00; room 2000 - 1600 = 400 -> 400 billable, 400 held.
    up = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "12"))
    assert (up["status"], up["billing"], up["amount"], up["held_amount"], up["adjustment_amount"], up["codes"]) == (
        "corrected",
        "billable",
        "2000.00",  # invoiced 1600.00 + the 400.00 of the adjustment that fits
        "400.00",
        "800.00",  # new value - invoiced value
        ["CAP_EXCEEDED"],
    )
    [second] = await billing_run(api, keys, "2026-03-31", contract_id)
    assert second["net"] == "400.00"  # exactly up to the cap
    await amend(api, keys, contract_id, 2, "2026-04-01", time_cap="3000.00")  # room 3000 - 2000 = 1000
    assert money(await get_entry(api, keys, "TE-1")) == ("billable", "2400.00", None, [])
    [third] = await billing_run(api, keys, "2026-03-31", contract_id)
    assert third["net"] == "400.00"  # the released rest: 1600 + 400 + 400 = 2400 = 12 h x 200.00
