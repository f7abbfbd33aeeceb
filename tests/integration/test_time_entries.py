"""Time entries through the API (DESIGN.md "Billing semantics"): pricing at the rate for the work date
across versions, fixed-fee time, holds, rejections, duplicates, corrections before invoicing,
precedence of reasons, limits, field ownership and voids. Every amount is worked out by hand."""

from __future__ import annotations

import uuid
from decimal import Decimal

from app.auth import create_client
from tests.factories import auth, register
from tests.work import (
    PSA,
    TIME,
    amend,
    billing_run,
    exceptions,
    fixed_fee,
    get_entry,
    money,
    new_contract,
    one_time,
    post_raw,
    post_time,
    state,
    time_entry,
    tm,
    void,
)


async def test_tm_time_is_priced_at_the_rate_for_its_work_date_merged_across_versions(api, keys):
    contract_id = await new_contract(
        api,
        keys,
        tm(
            rate_card=[
                {"role": "consultant", "rate": "200.00", "effective_from": "2026-01-05"},
                {"role": "architect", "rate": "300.00", "effective_from": "2026-01-05"},
                {"role": "engineer", "rate": "133.33", "effective_from": "2026-01-05"},
            ]
        ),
    )
    # Sent before any amendment: priced at version 1's 200.00, re-priced when version 2 applies.
    [early] = await post_time(api, keys, [time_entry("TE-8", contract_id, "2026-06-10", "1")])
    assert state(early) == ("accepted", "billable", "200.00", None, [])  # 1 x 200.00

    # v2 from 2026-06-01: consultant 220.00 asked from May applies from the amendment's date only;
    # analyst is new (from 2026-06-01); architect 310.00 from 2026-07-01.
    await amend(
        api,
        keys,
        contract_id,
        2,
        "2026-06-01",
        rate_card=[
            {"role": "consultant", "rate": "220.00", "effective_from": "2026-05-01"},
            {"role": "analyst", "rate": "150.00", "effective_from": "2026-01-05"},
            {"role": "architect", "rate": "310.00", "effective_from": "2026-07-01"},
        ],
    )
    # v3 from 2026-07-01: architect 320.00 from 2026-07-01, the same start as v2's 310.00: the newer wins.
    await amend(
        api,
        keys,
        contract_id,
        3,
        "2026-07-01",
        rate_card=[{"role": "architect", "rate": "320.00", "effective_from": "2026-07-01"}],
    )
    results = await post_time(
        api,
        keys,
        [
            time_entry("TE-1", contract_id, "2026-05-29", "7.5"),
            time_entry("TE-2", contract_id, "2026-06-01", "7.5"),
            time_entry("TE-3", contract_id, "2026-05-29", "4", role="analyst"),
            time_entry("TE-4", contract_id, "2026-06-02", "3.25", role="analyst"),
            time_entry("TE-5", contract_id, "2026-06-30", "2", role="architect"),
            time_entry("TE-6", contract_id, "2026-07-01", "2", role="architect"),
            time_entry("TE-7", contract_id, "2026-03-02", "2.5", role="engineer"),
        ],
    )
    got = {r["external_id"]: state(r) for r in results}
    assert got == {
        "TE-1": ("accepted", "billable", "1500.00", None, []),  # 7.5 x 200.00 (v2's rate starts 06-01)
        "TE-2": ("accepted", "billable", "1650.00", None, []),  # 7.5 x 220.00
        "TE-3": ("held", "held", "0.00", None, ["RATE_NOT_FOUND"]),  # no analyst rate before 06-01
        "TE-4": ("accepted", "billable", "487.50", None, []),  # 3.25 x 150.00
        "TE-5": ("accepted", "billable", "600.00", None, []),  # 2 x 300.00 (v2's 310.00 starts 07-01)
        "TE-6": ("accepted", "billable", "640.00", None, []),  # 2 x 320.00 (v3 beats v2's 620.00)
        "TE-7": ("accepted", "billable", "333.33", None, []),  # 2.5 x 133.33 = 333.325 -> half-up 333.33
    }
    assert all(r["currency"] == "USD" and r["adjustment_amount"] is None for r in results)
    # The entry sent before the amendment: 1 x 220.00 now (nothing invoiced, so re-judged).
    assert money(await get_entry(api, keys, "TE-8")) == ("billable", "220.00", None, [])


async def test_fixed_fee_time_is_cost_only(api, keys):
    contract_id = await new_contract(api, keys, fixed_fee())
    result = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-02-03", "7.5"))
    assert state(result) == ("accepted", "non_billable", "0.00", None, ["FIXED_FEE"])
    assert result["currency"] == "USD" and result["adjustment_amount"] is None
    entry = await get_entry(api, keys, "TE-1")
    assert entry["contract_id"] == contract_id and money(entry) == ("non_billable", "0.00", None, ["FIXED_FEE"])
    assert entry["transactions"] == []  # non-billable: no transaction
    assert await billing_run(api, keys, "2026-12-31", contract_id) == []


async def test_time_for_a_role_without_rate_is_held_without_value_until_a_rate_is_added(api, keys):
    contract_id = await new_contract(api, keys, tm())
    results = await post_time(
        api,
        keys,
        [
            time_entry("TE-1", contract_id, "2026-06-10", "7.5", role="designer"),
            time_entry("TE-2", contract_id, "2026-06-11", "2", role="designer"),
        ],
    )
    assert [state(r) for r in results] == [("held", "held", "0.00", None, ["RATE_NOT_FOUND"])] * 2
    entry = await get_entry(api, keys, "TE-1")
    assert [(t["amount"], t["status"], t["reason"]) for t in entry["transactions"]] == [
        ("0.00", "held", "rate_not_found")
    ]
    assert entry["transactions"][0]["release"]  # says in words what would release it
    [exception] = await exceptions(api, keys, "RATE_NOT_FOUND")  # one per (code, contract)
    assert exception["queue"] == "delivery" and exception["status"] == "open"

    # A rate for designers from 2026-06-01 gives both a value: 7.5 x 180.00 = 1350.00, 2 x 180.00 = 360.00.
    await amend(
        api,
        keys,
        contract_id,
        2,
        "2026-06-01",
        rate_card=[{"role": "designer", "rate": "180.00", "effective_from": "2026-06-01"}],
    )
    assert money(await get_entry(api, keys, "TE-1")) == ("billable", "1350.00", None, [])
    assert money(await get_entry(api, keys, "TE-2")) == ("billable", "360.00", None, [])
    [exception] = await exceptions(api, keys, "RATE_NOT_FOUND")
    assert exception["status"] == "resolved"
    [invoice] = await billing_run(api, keys, "2026-06-30", contract_id)
    assert invoice["net"] == "1710.00"  # 1350.00 + 360.00


async def test_work_outside_the_term_is_held_without_value(api, keys):
    contract_id = await new_contract(api, keys, tm())  # term 2026-01-05 .. 2026-12-18
    results = await post_time(
        api,
        keys,
        [
            time_entry("TE-1", contract_id, "2026-01-04", "8"),
            time_entry("TE-2", contract_id, "2026-01-05", "8"),
            time_entry("TE-3", contract_id, "2026-12-18", "8"),
            time_entry("TE-4", contract_id, "2026-12-19", "8"),
        ],
    )
    assert [state(r) for r in results] == [
        ("held", "held", "0.00", None, ["OUTSIDE_CONTRACT_TERM"]),  # the day before the start
        ("accepted", "billable", "1600.00", None, []),  # 8 x 200.00, the first day
        ("accepted", "billable", "1600.00", None, []),  # the last day
        ("held", "held", "0.00", None, ["OUTSIDE_CONTRACT_TERM"]),  # the day after the end
    ]
    entry = await get_entry(api, keys, "TE-4")
    assert [(t["amount"], t["status"], t["reason"]) for t in entry["transactions"]] == [
        ("0.00", "held", "outside_term")
    ]
    # The term extended to 2026-12-31: TE-4 gets its value, 8 x 200.00; TE-1 stays outside.
    await amend(api, keys, contract_id, 2, "2026-12-01", end_date="2026-12-31")
    assert money(await get_entry(api, keys, "TE-4")) == ("billable", "1600.00", None, [])
    assert money(await get_entry(api, keys, "TE-1")) == ("held", "0.00", None, ["OUTSIDE_CONTRACT_TERM"])


async def test_unapproved_entries_and_hours_outside_0_24_are_rejected_and_nothing_is_stored(api, keys):
    contract_id = await new_contract(api, keys, tm())
    unapproved = time_entry("TE-1", contract_id, "2026-02-03", "8", approved=False)
    null_approval = time_entry("TE-2", contract_id, "2026-02-03", "8", approved_at=None)
    results = await post_time(
        api,
        keys,
        [
            unapproved,
            null_approval,
            time_entry("TE-3", contract_id, "2026-02-03", "0"),
            time_entry("TE-4", contract_id, "2026-02-03", "24.01"),
            time_entry("TE-5", contract_id, "2026-02-03", "-1"),
            time_entry("TE-6", contract_id, "2026-02-03", "24"),
        ],
    )
    expected = [
        ("TE-1", "NOT_APPROVED"),
        ("TE-2", "NOT_APPROVED"),
        ("TE-3", "INVALID_HOURS"),
        ("TE-4", "INVALID_HOURS"),
        ("TE-5", "INVALID_HOURS"),
    ]
    for (external_id, code), result in zip(expected, results, strict=False):
        assert result["external_id"] == external_id
        assert (result["status"], result["billing"], result["amount"], result["codes"]) == (
            "rejected",
            None,
            None,
            [code],
        ), result
        assert result["held_amount"] is None and result["adjustment_amount"] is None
    assert state(results[5]) == ("accepted", "billable", "4800.00", None, [])  # 24 x 200.00: 24 is allowed
    for external_id in ("TE-1", "TE-3"):
        assert (await api.get(f"{TIME}/{PSA}/{external_id}", headers=auth(keys["admin"]))).status_code == 404
    # Re-sent approved, it is judged afresh: a new entry, 8 x 200.00.
    again = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-02-03", "8"))
    assert state(again) == ("accepted", "billable", "1600.00", None, [])


async def test_a_missing_or_mistyped_field_rejects_that_entry_only_naming_the_field(api, keys):
    contract_id = await new_contract(api, keys, tm())
    no_date = time_entry("TE-2", contract_id, "2026-02-03", "8")
    del no_date["work_date"]
    number_hours = time_entry("TE-3", contract_id, "2026-02-03", "8")
    number_hours["hours"] = 7.5  # a JSON number where a decimal string is expected
    number_and_unapproved = time_entry("TE-4", contract_id, "2026-02-03", "8", approved=False)
    number_and_unapproved["hours"] = 8
    results = await post_time(
        api,
        keys,
        [
            time_entry("TE-1", contract_id, "2026-02-03", "8"),
            no_date,
            number_hours,
            number_and_unapproved,
            time_entry("TE-5", contract_id, "2026-02-04", "2"),
        ],
    )
    assert state(results[0]) == ("accepted", "billable", "1600.00", None, [])  # 8 x 200.00
    assert state(results[4]) == ("accepted", "billable", "400.00", None, [])  # 2 x 200.00
    for result, field in ((results[1], "work_date"), (results[2], "hours"), (results[3], "hours")):
        assert (result["status"], result["amount"], result["codes"]) == ("rejected", None, ["INVALID_ENTRY"]), result
        assert [field] in [e["loc"] for e in result["errors"]], result
        assert all(e["msg"] for e in result["errors"])
    [invoice] = await billing_run(api, keys, "2026-02-28", contract_id)
    assert invoice["net"] == "2000.00"  # 1600.00 + 400.00: the rejected ones were never stored


async def test_an_unknown_contract_is_rejected(api, keys):
    await new_contract(api, keys, tm())
    result = await one_time(api, keys, time_entry("TE-1", str(uuid.uuid4()), "2026-02-03", "8"))
    assert (result["status"], result["billing"], result["amount"], result["codes"]) == (
        "rejected",
        None,
        None,
        ["UNKNOWN_CONTRACT"],
    )
    assert (await api.get(f"{TIME}/{PSA}/TE-1", headers=auth(keys["admin"]))).status_code == 404


async def test_the_same_entry_again_is_a_duplicate_also_twice_in_one_request(api, keys):
    contract_id = await new_contract(api, keys, tm())
    first = time_entry("TE-1", contract_id, "2026-02-03", "8")
    assert state(await one_time(api, keys, first)) == ("accepted", "billable", "1600.00", None, [])  # 8 x 200.00
    second = time_entry("TE-2", contract_id, "2026-02-04", "2")
    results = await post_time(api, keys, [first, second, second])
    assert [(r["external_id"], *state(r)) for r in results] == [
        ("TE-1", "duplicate", "billable", "1600.00", None, []),
        ("TE-2", "accepted", "billable", "400.00", None, []),  # 2 x 200.00
        ("TE-2", "duplicate", "billable", "400.00", None, []),  # the second in the list is the duplicate
    ]
    entry = await get_entry(api, keys, "TE-2")
    assert len(entry["versions"]) == 1 and len(entry["transactions"]) == 1
    # Another source's TE-1 is another entry.
    [other] = await post_time(api, keys, [first], source="harvest")
    assert state(other) == ("accepted", "billable", "1600.00", None, [])
    [invoice] = await billing_run(api, keys, "2026-02-28", contract_id)
    assert invoice["net"] == "3600.00"  # 1600.00 + 400.00 + 1600.00 (harvest): nothing twice


async def test_a_correction_before_invoicing_reprices_in_place_and_keeps_the_old_version(api, keys):
    contract_id = await new_contract(api, keys, tm())
    original = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-02-03", "7.5"))
    assert state(original) == ("accepted", "billable", "1500.00", None, [])  # 7.5 x 200.00
    corrected = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-02-04", "8"))
    assert state(corrected) == ("corrected", "billable", "1600.00", None, [])  # 8 x 200.00
    assert corrected["adjustment_amount"] is None  # nothing was invoiced: no adjustment
    entry = await get_entry(api, keys, "TE-1")
    assert entry["status"] == "corrected"
    versions = sorted(entry["versions"], key=lambda v: v["version"])
    assert [(v["version"], v["work_date"], Decimal(v["hours"])) for v in versions] == [
        (1, "2026-02-03", Decimal("7.5")),
        (2, "2026-02-04", Decimal("8")),
    ]
    assert [(t["kind"], t["amount"], t["date"], t["status"], t["reason"]) for t in entry["transactions"]] == [
        ("time", "1600.00", "2026-02-04", "unbilled", "awaiting_billing_run")
    ]
    [invoice] = await billing_run(api, keys, "2026-02-28", contract_id)
    assert invoice["net"] == "1600.00"  # the latest version only, not 1500.00 + 1600.00


async def test_a_correction_moving_an_entry_to_another_contract_is_rejected(api, keys):
    first = await new_contract(api, keys, tm())
    second = await new_contract(api, keys, tm())
    await one_time(api, keys, time_entry("TE-1", first, "2026-02-03", "7.5"))
    moved = await one_time(api, keys, time_entry("TE-1", second, "2026-02-03", "7.5"))
    assert (moved["status"], moved["billing"], moved["amount"], moved["codes"]) == (
        "rejected",
        None,
        None,
        ["CONTRACT_CHANGED"],
    )
    entry = await get_entry(api, keys, "TE-1")
    assert entry["contract_id"] == first and len(entry["versions"]) == 1
    assert money(entry) == ("billable", "1500.00", None, [])  # 7.5 x 200.00, untouched


async def test_the_first_reason_in_the_documented_order_decides(api, keys):
    tm_id = await new_contract(api, keys, tm())
    ff_id = await new_contract(api, keys, fixed_fee())
    results = await post_time(
        api,
        keys,
        [
            # not approved and outside the term: a rejection beats a hold
            time_entry("TE-1", tm_id, "2027-01-10", "8", approved=False),
            # outside the term and a role without rate, on a fixed-fee contract: the term comes first
            time_entry("TE-2", ff_id, "2027-01-10", "8", role="juggler"),
            # a role without rate on a fixed-fee contract, within the term: cost-only, not RATE_NOT_FOUND
            time_entry("TE-3", ff_id, "2026-03-10", "8", role="juggler"),
            # hours out of range and an unknown contract: INVALID_HOURS comes before UNKNOWN_CONTRACT
            time_entry("TE-4", str(uuid.uuid4()), "2026-03-10", "25"),
            # not approved with bad hours: NOT_APPROVED comes before INVALID_HOURS
            time_entry("TE-5", tm_id, "2026-03-10", "0", approved=False),
        ],
    )
    assert [(r["status"], r["codes"]) for r in results] == [
        ("rejected", ["NOT_APPROVED"]),
        ("held", ["OUTSIDE_CONTRACT_TERM"]),
        ("accepted", ["FIXED_FEE"]),
        ("rejected", ["INVALID_HOURS"]),
        ("rejected", ["NOT_APPROVED"]),
    ]
    assert (results[1]["billing"], results[1]["amount"], results[1]["held_amount"]) == ("held", "0.00", None)
    assert (results[2]["billing"], results[2]["amount"]) == ("non_billable", "0.00")


async def test_more_than_5000_entries_is_413_before_anything_is_judged(api, keys):
    contract_id = await new_contract(api, keys, tm())
    entries = [time_entry(f"TE-{n}", contract_id, "2026-02-03", "1") for n in range(5001)]
    response = await post_raw(api, keys["integration"], entries)
    assert response.status_code == 413, response.text[:500]
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert (await api.get(f"{TIME}/{PSA}/TE-0", headers=auth(keys["admin"]))).status_code == 404


async def test_a_crm_key_may_not_send_time_and_nothing_is_stored(api, keys, services):
    contract_id = await new_contract(api, keys, tm())
    async with services.db.transaction() as conn:
        _, crm_key = await create_client(conn, "salesforce", "integration", system="crm")
        _, erp_key = await create_client(conn, "netsuite", "integration", system="erp")
        _, psa_key = await create_client(conn, "kantata", "integration", system="psa")
    entry = time_entry("TE-1", contract_id, "2026-02-03", "8")
    for key in (crm_key, erp_key):
        refused = await post_raw(api, key, [entry])
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "FIELD_NOT_OWNED"
    for role in ("finance", "bi", "customer"):  # roles that do not write work
        assert (await post_raw(api, keys[role], [entry])).status_code == 403
    assert (await api.get(f"{TIME}/{PSA}/TE-1", headers=auth(keys["admin"]))).status_code == 404
    allowed = await post_raw(api, psa_key, [entry])
    assert allowed.status_code == 200, allowed.text
    assert state(allowed.json()["results"][0]) == ("accepted", "billable", "1600.00", None, [])  # 8 x 200.00


async def test_get_and_delete_by_source_and_external_id(api, keys):
    contract_id = await new_contract(api, keys, tm())
    assert (await api.get(f"{TIME}/{PSA}/TE-404", headers=auth(keys["admin"]))).status_code == 404
    assert (await void(api, keys, "TE-404")).status_code == 404

    entry = time_entry("TE-1", contract_id, "2026-02-03", "8")
    await one_time(api, keys, entry)
    got = await get_entry(api, keys, "TE-1")
    assert (got["external_id"], got["contract_id"], got["currency"]) == ("TE-1", contract_id, "USD")
    assert state(got) == ("accepted", "billable", "1600.00", None, [])  # 8 x 200.00

    voided = await void(api, keys, "TE-1")
    assert voided.status_code == 200, voided.text
    assert state(voided.json()) == ("voided", "non_billable", "0.00", None, ["VOIDED"])
    after = await get_entry(api, keys, "TE-1")
    assert state(after) == ("voided", "non_billable", "0.00", None, ["VOIDED"])
    assert after["transactions"] == []  # voided before invoicing: it left billing
    assert len(after["versions"]) == 2 and sorted(after["versions"], key=lambda v: v["version"])[1]["voided"] is True

    again = await void(api, keys, "TE-1")  # voiding again changes nothing
    assert again.status_code == 200 and state(again.json()) == ("voided", "non_billable", "0.00", None, ["VOIDED"])
    assert len((await get_entry(api, keys, "TE-1"))["versions"]) == 2
    assert await billing_run(api, keys, "2026-02-28", contract_id) == []

    resent = await one_time(api, keys, entry)  # re-sending after a void: a correction of the void
    assert state(resent) == ("corrected", "billable", "1600.00", None, [])
    assert len((await get_entry(api, keys, "TE-1"))["versions"]) == 3
    [invoice] = await billing_run(api, keys, "2026-02-28", contract_id)
    assert invoice["net"] == "1600.00"


async def test_void_true_in_a_batch_voids_the_entry(api, keys):
    contract_id = await new_contract(api, keys, tm())
    await post_time(
        api,
        keys,
        [time_entry("TE-1", contract_id, "2026-02-03", "8"), time_entry("TE-2", contract_id, "2026-02-04", "2")],
    )
    results = await post_time(
        api, keys, [{"external_id": "TE-1", "void": True}, {"external_id": "TE-404", "void": True}]
    )
    assert state(results[0]) == ("voided", "non_billable", "0.00", None, ["VOIDED"])
    assert (results[1]["status"], results[1]["amount"], results[1]["codes"]) == ("rejected", None, ["UNKNOWN_ENTRY"])
    assert state(await get_entry(api, keys, "TE-1")) == ("voided", "non_billable", "0.00", None, ["VOIDED"])
    [repeat] = await post_time(api, keys, [{"external_id": "TE-1", "void": True}])
    assert state(repeat) == ("voided", "non_billable", "0.00", None, ["VOIDED"])
    [invoice] = await billing_run(api, keys, "2026-02-28", contract_id)
    assert invoice["net"] == "400.00"  # TE-2 only: 2 x 200.00


async def test_the_same_entry_twice_in_one_request_counts_in_list_order(api, keys):
    contract_id = await new_contract(api, keys, tm())
    results = await post_time(
        api,
        keys,
        [
            time_entry("TE-1", contract_id, "2026-02-03", "8"),
            time_entry("TE-1", contract_id, "2026-02-03", "6"),  # the second corrects the first
        ],
    )
    # Each result gives the entry's state after the whole request (6 x 200.00 = 1200.00); the status
    # says what the request did with that item.
    assert [state(r) for r in results] == [
        ("accepted", "billable", "1200.00", None, []),
        ("corrected", "billable", "1200.00", None, []),
    ]
    entry = await get_entry(api, keys, "TE-1")
    assert len(entry["versions"]) == 2 and [t["amount"] for t in entry["transactions"]] == ["1200.00"]


async def test_mistyped_fields_are_invalid_entries(api, keys):
    contract_id = await new_contract(api, keys, tm())
    cases = {
        "TE-1": ("work_date", "2026-02-03T00:00:00Z"),  # a date-time where a date is expected
        "TE-2": ("work_date", "2026-02-30"),
        "TE-3": ("hours", "eight"),
        "TE-4": ("contract_id", 42),
        "TE-5": ("approved_at", "2026-02-04T09:00:00"),  # a time without a UTC offset
        "TE-6": ("work_date", "2200-01-01"),  # business dates fall within 1970-01-01 .. 2199-12-31
    }
    entries = []
    for external_id, (field, value) in cases.items():
        entry = time_entry(external_id, contract_id, "2026-02-03", "8")
        entry[field] = value
        entries.append(entry)
    results = await post_time(api, keys, entries)
    for (external_id, (field, _)), result in zip(cases.items(), results, strict=True):
        assert (result["external_id"], result["status"], result["amount"], result["codes"]) == (
            external_id,
            "rejected",
            None,
            ["INVALID_ENTRY"],
        ), result
        assert [field] in [e["loc"] for e in result["errors"]], result


async def test_a_malformed_envelope_is_a_422_for_the_request(api, keys):
    contract_id = await new_contract(api, keys, tm())
    entry = time_entry("TE-1", contract_id, "2026-02-03", "8")
    for body in ({"source": PSA}, {"source": PSA, "entries": entry}, {"entries": [entry]}, [entry]):
        response = await api.post(TIME, json=body, headers=auth(keys["integration"]))
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    not_json = await api.post(
        TIME, content=b"entries", headers={**auth(keys["integration"]), "Content-Type": "text/plain"}
    )
    assert not_json.status_code == 415
    assert (await api.get(f"{TIME}/{PSA}/TE-1", headers=auth(keys["admin"]))).status_code == 404


async def test_work_for_a_blocked_contract_is_held_until_the_contract_activates(api, keys, sandbox):
    body = tm(customer={"external_id": "NEWCO-001", "name": "NewCo"})
    created = await register(api, keys["integration"], body)
    assert created.status_code == 201 and created.json()["status"] == "blocked", created.text
    contract_id = created.json()["id"]
    [exception] = created.json()["exceptions"]
    results = await post_time(
        api,
        keys,
        [
            time_entry("TE-1", contract_id, "2026-02-03", "8"),
            time_entry("TE-2", contract_id, "2027-02-03", "8"),  # also outside the term: blocked comes first
        ],
    )
    assert [state(r) for r in results] == [("held", "held", "0.00", None, ["CONTRACT_BLOCKED"])] * 2
    entry = await get_entry(api, keys, "TE-1")
    assert [(t["amount"], t["status"], t["reason"]) for t in entry["transactions"]] == [
        ("0.00", "held", "contract_blocked")
    ]

    put = await sandbox.put(
        "/erp/services/rest/record/v1/customer/eid:NEWCO-001", json={"companyName": "NewCo", "subsidiary": "US01"}
    )
    assert put.status_code == 204
    retried = await api.post(
        f"/process/v1/exceptions/{exception['id']}/retry",
        json={"note": "customer created"},
        headers=auth(keys["admin"]),
    )
    assert retried.status_code == 200 and retried.json()["status"] == "resolved", retried.text
    # Activated: re-evaluated. TE-1 8 x 200.00 = 1600.00; TE-2 is now judged on the term.
    assert money(await get_entry(api, keys, "TE-1")) == ("billable", "1600.00", None, [])
    assert money(await get_entry(api, keys, "TE-2")) == ("held", "0.00", None, ["OUTSIDE_CONTRACT_TERM"])
    [invoice] = await billing_run(api, keys, "2026-02-28", contract_id)
    assert invoice["net"] == "1600.00"


async def test_an_idempotency_key_replays_the_first_answer(api, keys):
    contract_id = await new_contract(api, keys, tm())
    body = {"source": PSA, "entries": [time_entry("TE-1", contract_id, "2026-02-03", "8")]}
    headers = {**auth(keys["integration"]), "Idempotency-Key": "psa-batch-1"}
    first = await api.post(TIME, json=body, headers=headers)
    again = await api.post(TIME, json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()  # the first answer ("accepted"), not "duplicate"
    assert state(again.json()["results"][0]) == ("accepted", "billable", "1600.00", None, [])
    other = {"source": PSA, "entries": [time_entry("TE-1", contract_id, "2026-02-03", "9")]}
    reused = await api.post(TIME, json=other, headers=headers)
    assert reused.status_code == 422 and reused.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert len((await get_entry(api, keys, "TE-1"))["versions"]) == 1
