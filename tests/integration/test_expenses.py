"""Expenses through the API (DESIGN.md "Billing semantics"): reimbursable categories of the newest
version, conversion at the sandbox FX rate for the incurred-on day rounded half-up to the contract
currency (GBP, JPY 0 decimals, KWD 3 decimals), FX_RATE_MISSING and its release, INVALID_AMOUNT and
amounts with too many decimals. Every amount is worked out by hand."""

from __future__ import annotations

from typing import Any

from tests.factories import auth
from tests.work import (
    EXCEPTIONS,
    EXPENSES,
    amend,
    billing_run,
    exceptions,
    expense,
    get_entry,
    get_invoice,
    money,
    new_contract,
    post_expenses,
    post_time,
    set_fx,
    state,
    time_entry,
    tm,
)

TYRELL = dict(
    legal_entity="GB01",
    currency="GBP",
    customer={"external_id": "TYRELL-UK-001", "name": "Tyrell UK Ltd"},
    tax={"jurisdiction": "GB", "customer_tax_id": None},
    rate_card=[{"role": "consultant", "rate": "150.00", "effective_from": "2026-01-05"}],
    reimbursable_expenses=[{"category": "travel", "cap": "5000.00"}],
)


async def get_expense(api, keys, external_id: str) -> dict[str, Any]:  # noqa: ANN001
    return await get_entry(api, keys, external_id, path=EXPENSES)


async def test_the_newest_version_decides_which_categories_are_reimbursable(api, keys):
    contract_id = await new_contract(api, keys, tm())  # travel reimbursable, cap 15,000.00
    results = await post_expenses(
        api,
        keys,
        [
            expense("EX-1", contract_id, "2026-03-02", "45.00", "USD", category="meals"),
            expense("EX-2", contract_id, "2026-03-03", "100.00", "USD"),
        ],
    )
    assert state(results[0]) == ("accepted", "non_billable", "0.00", None, ["NOT_REIMBURSABLE"])
    assert state(results[1]) == ("accepted", "billable", "100.00", None, [])
    assert (await get_expense(api, keys, "EX-1"))["transactions"] == []  # non-billable: no transaction
    [invoice] = await billing_run(api, keys, "2026-03-31", contract_id)
    assert invoice["net"] == "100.00"  # EX-2 only
    [ex3] = await post_expenses(api, keys, [expense("EX-3", contract_id, "2026-04-02", "50.00", "USD")])
    assert state(ex3) == ("accepted", "billable", "50.00", None, [])

    # Version 2 (from 2026-06-01) replaces the list: meals only. It governs all work, March's included.
    await amend(api, keys, contract_id, 2, "2026-06-01", reimbursable_expenses=[{"category": "meals", "cap": "500.00"}])
    assert money(await get_expense(api, keys, "EX-1")) == ("billable", "45.00", None, [])
    assert money(await get_expense(api, keys, "EX-3")) == ("non_billable", "0.00", None, ["NOT_REIMBURSABLE"])
    invoiced = await get_expense(api, keys, "EX-2")  # invoiced: keeps its value, no adjustment from an amendment
    assert money(invoiced) == ("billable", "100.00", None, []) and invoiced["adjustment_amount"] is None
    [second] = await billing_run(api, keys, "2026-06-30", contract_id)
    assert second["net"] == "45.00"  # EX-1 only


async def test_a_foreign_expense_converts_at_the_rate_of_its_day_rounded_half_up(api, keys, sandbox):
    contract_id = await new_contract(api, keys, tm(**TYRELL))
    await set_fx(sandbox, "2026-03-02", "EUR", "GBP", "0.8571")
    await set_fx(sandbox, "2026-03-03", "EUR", "GBP", "0.85")
    results = await post_expenses(
        api,
        keys,
        [
            expense("EX-1", contract_id, "2026-03-02", "123.45", "EUR"),
            expense("EX-2", contract_id, "2026-03-03", "10.10", "EUR"),
            expense("EX-3", contract_id, "2026-03-04", "45.00", "GBP"),
            expense("EX-4", contract_id, "2026-03-03", "100.00", "EUR"),
        ],
    )
    assert [(r["external_id"], r["amount"], r["converted_amount"], r["currency"]) for r in results] == [
        ("EX-1", "105.81", "105.81", "GBP"),  # 123.45 x 0.8571 = 105.808995 -> 105.81
        ("EX-2", "8.59", "8.59", "GBP"),  # 10.10 x 0.85 = 8.585 -> half-up 8.59 (half-even would say 8.58)
        ("EX-3", "45.00", "45.00", "GBP"),  # already GBP
        ("EX-4", "85.00", "85.00", "GBP"),  # 100.00 x 0.85: 03-03's rate, not 03-02's
    ]
    assert all(r["status"] == "accepted" and r["billing"] == "billable" for r in results)
    [invoice] = await billing_run(api, keys, "2026-03-31", contract_id)
    # 105.81 + 8.59 + 45.00 + 85.00 = 244.40 on one travel line; GB 20 %: 48.88; total 293.28
    assert (invoice["currency"], invoice["net"], invoice["tax"], invoice["total"]) == (
        "GBP",
        "244.40",
        "48.88",
        "293.28",
    )


async def _entity(api, keys, sandbox, code: str, country: str, currency: str, customer: str, tax: str) -> None:  # noqa: ANN001
    """A legal entity selling in ``currency``, an ERP customer of it, and a tax jurisdiction for it."""
    put = await api.put(
        f"/process/v1/legal-entities/{code}",
        json={
            "name": f"Globex {country}",
            "country": country,
            "functional_currency": currency,
            "allowed_currencies": [currency],
        },
        headers=auth(keys["admin"]),
    )
    assert put.status_code in (200, 201), put.text
    erp = await sandbox.put(
        f"/erp/services/rest/record/v1/customer/eid:{customer}", json={"companyName": customer, "subsidiary": code}
    )
    assert erp.status_code in (200, 201, 204), erp.text
    rate = await sandbox.put(f"/tax/rates/{country}", json={"rate": tax})
    assert rate.status_code in (200, 201), rate.text


async def test_jpy_contract_rounds_to_whole_yen(api, keys, sandbox):
    await _entity(api, keys, sandbox, "JP01", "JP", "JPY", "NIPPON-001", "0.10")
    contract_id = await new_contract(
        api,
        keys,
        tm(
            legal_entity="JP01",
            currency="JPY",
            customer={"external_id": "NIPPON-001", "name": "Nippon KK"},
            tax={"jurisdiction": "JP", "customer_tax_id": None},
            rate_card=[{"role": "consultant", "rate": "20001", "effective_from": "2026-01-05"}],
            reimbursable_expenses=[{"category": "travel", "cap": "1000000"}],
        ),
    )
    await set_fx(sandbox, "2026-03-02", "USD", "JPY", "151")
    [hours] = await post_time(api, keys, [time_entry("TE-J1", contract_id, "2026-03-02", "2.5")])
    assert state(hours) == ("accepted", "billable", "50003", None, [])  # 2.5 x 20001 = 50002.5 -> 50003
    results = await post_expenses(
        api,
        keys,
        [
            expense("EX-J1", contract_id, "2026-03-02", "1.50", "USD"),
            expense("EX-J2", contract_id, "2026-03-02", "100.00", "JPY"),  # trailing zeros are fine
            expense("EX-J3", contract_id, "2026-03-02", "100.5", "JPY"),  # half a yen: too many decimals
        ],
    )
    assert (results[0]["amount"], results[0]["converted_amount"]) == ("227", "227")  # 1.50 x 151 = 226.5 -> 227
    assert state(results[1]) == ("accepted", "billable", "100", None, [])
    assert (results[2]["status"], results[2]["amount"], results[2]["codes"]) == ("rejected", None, ["INVALID_ENTRY"])
    assert ["amount"] in [e["loc"] for e in results[2]["errors"]]
    [invoice] = await billing_run(api, keys, "2026-03-31", contract_id)
    # time 50003, tax 5000.3 -> 5000; travel 227 + 100 = 327, tax 32.7 -> 33
    # net 50003 + 327 = 50330; tax 5000 + 33 = 5033; total 55363
    assert (invoice["currency"], invoice["net"], invoice["tax"], invoice["total"]) == ("JPY", "50330", "5033", "55363")


async def test_kwd_contract_rounds_to_three_decimals(api, keys, sandbox):
    await _entity(api, keys, sandbox, "KW01", "KW", "KWD", "GULF-001", "0")
    contract_id = await new_contract(
        api,
        keys,
        tm(
            legal_entity="KW01",
            currency="KWD",
            customer={"external_id": "GULF-001", "name": "Gulf Trading"},
            tax={"jurisdiction": "KW", "customer_tax_id": None},
            rate_card=[{"role": "consultant", "rate": "50.121", "effective_from": "2026-01-05"}],
            reimbursable_expenses=[{"category": "travel", "cap": "10000.000"}],
        ),
    )
    await set_fx(sandbox, "2026-03-02", "EUR", "KWD", "0.33325")
    [hours] = await post_time(api, keys, [time_entry("TE-K1", contract_id, "2026-03-02", "2.5")])
    # 2.5 x 50.121 = 125.3025 -> half-up 125.303 (half-even would say 125.302)
    assert state(hours) == ("accepted", "billable", "125.303", None, [])
    results = await post_expenses(
        api,
        keys,
        [
            expense("EX-K1", contract_id, "2026-03-02", "10.00", "EUR"),
            expense("EX-K2", contract_id, "2026-03-02", "1.234", "KWD"),
            expense("EX-K3", contract_id, "2026-03-02", "1.2345", "KWD"),
            expense("EX-K4", contract_id, "2026-03-02", "12.345", "EUR"),  # EUR has 2 decimals
        ],
    )
    # 10.00 x 0.33325 = 3.3325 -> half-up 3.333 (half-even would say 3.332)
    assert (results[0]["amount"], results[0]["converted_amount"]) == ("3.333", "3.333")
    assert state(results[1]) == ("accepted", "billable", "1.234", None, [])
    for rejected in results[2:]:
        assert (rejected["status"], rejected["amount"], rejected["codes"]) == ("rejected", None, ["INVALID_ENTRY"])
        assert ["amount"] in [e["loc"] for e in rejected["errors"]]
    [invoice] = await billing_run(api, keys, "2026-03-31", contract_id)
    # 125.303 + 3.333 + 1.234 = 129.870 at 0 %
    assert (invoice["net"], invoice["tax"], invoice["total"]) == ("129.870", "0.000", "129.870")


async def test_a_missing_fx_rate_holds_without_value_until_published(api, keys, sandbox):
    contract_id = await new_contract(api, keys, tm(**TYRELL))
    results = await post_expenses(
        api,
        keys,
        [
            expense("EX-1", contract_id, "2026-03-06", "50.00", "EUR"),
            # not reimbursable comes before FX_RATE_MISSING: no rate is needed for it
            expense("EX-2", contract_id, "2026-03-06", "20.00", "EUR", category="meals"),
        ],
    )
    assert state(results[0]) == ("held", "held", "0.00", None, ["FX_RATE_MISSING"])
    assert results[0]["converted_amount"] is None
    assert state(results[1]) == ("accepted", "non_billable", "0.00", None, ["NOT_REIMBURSABLE"])
    held = await get_expense(api, keys, "EX-1")
    assert [(t["amount"], t["status"], t["reason"]) for t in held["transactions"]] == [
        ("0.00", "held", "fx_rate_missing")
    ]
    [exception] = [e for e in await exceptions(api, keys, "FX_RATE_MISSING") if e["status"] == "open"]
    assert exception["queue"] == "finance" and "retry" in exception["actions"]

    # The rate is published; retrying the exception re-prices: 50.00 x 0.87 = 43.50.
    await set_fx(sandbox, "2026-03-06", "EUR", "GBP", "0.87")
    retried = await api.post(
        f"{EXCEPTIONS}/{exception['id']}/retry", json={"note": "rate published"}, headers=auth(keys["finance"])
    )
    assert retried.status_code == 200, retried.text
    assert money(await get_expense(api, keys, "EX-1")) == ("billable", "43.50", None, [])

    # Another day without a rate; this time a billing run for the contract re-prices it when it starts.
    [late] = await post_expenses(api, keys, [expense("EX-3", contract_id, "2026-03-05", "200.00", "EUR")])
    assert state(late) == ("held", "held", "0.00", None, ["FX_RATE_MISSING"])
    await set_fx(sandbox, "2026-03-05", "EUR", "GBP", "0.86")
    [invoice] = await billing_run(api, keys, "2026-03-31", contract_id)
    # 43.50 + 200.00 x 0.86 = 43.50 + 172.00 = 215.50; GB 20 %: 43.10; total 258.60
    assert (invoice["net"], invoice["tax"], invoice["total"]) == ("215.50", "43.10", "258.60")
    priced = await get_expense(api, keys, "EX-3")
    assert money(priced) == ("billable", "172.00", None, [])
    assert [(t["amount"], t["status"], t["invoice_id"]) for t in priced["transactions"]] == [
        ("172.00", "invoiced", invoice["id"])
    ]
    lines = (await get_invoice(api, keys, invoice["id"]))["lines"]
    assert [(line["kind"], line["net"]) for line in lines] == [("expense", "215.50")]


async def test_amounts_must_be_positive_decimal_strings_within_the_currency(api, keys):
    contract_id = await new_contract(api, keys, tm())
    number = expense("EX-5", contract_id, "2026-03-02", "12.50", "USD")
    number["amount"] = 12.5  # a JSON number for money
    results = await post_expenses(
        api,
        keys,
        [
            expense("EX-1", contract_id, "2026-03-02", "0", "USD"),
            expense("EX-2", contract_id, "2026-03-02", "0.00", "USD"),
            expense("EX-3", contract_id, "2026-03-02", "-5.00", "USD"),
            expense("EX-4", contract_id, "2026-03-02", "12.345", "USD"),
            number,
            expense("EX-6", contract_id, "2026-03-02", "-5.00", "USD", approved=False),
            expense("EX-7", contract_id, "2026-03-02", "12.30", "USD"),
        ],
    )
    assert [(r["external_id"], r["status"], r["amount"], r["codes"]) for r in results] == [
        ("EX-1", "rejected", None, ["INVALID_AMOUNT"]),
        ("EX-2", "rejected", None, ["INVALID_AMOUNT"]),
        ("EX-3", "rejected", None, ["INVALID_AMOUNT"]),
        ("EX-4", "rejected", None, ["INVALID_ENTRY"]),  # 12.345 USD needs 3 decimals, USD has 2
        ("EX-5", "rejected", None, ["INVALID_ENTRY"]),
        ("EX-6", "rejected", None, ["NOT_APPROVED"]),  # NOT_APPROVED comes before INVALID_AMOUNT
        ("EX-7", "accepted", "12.30", []),
    ]
    for rejected in results[3:5]:
        assert ["amount"] in [e["loc"] for e in rejected["errors"]]
    missing = await api.get(f"{EXPENSES}/kantata/EX-1", headers=auth(keys["admin"]))
    assert missing.status_code == 404  # rejected: nothing stored
