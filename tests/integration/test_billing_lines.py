"""Invoice lines (DESIGN.md "Billing runs and invoices", "Edge rules"): time by (role, rate compared as a
number, adjustment or not), expenses by (category, adjustment or not), each milestone alone, a release
on its entry's line; a zero-net run still issues an invoice; every line's transaction_ids walk back to
the entries. US01 sells in New York at 8.875 %; tax is per line, rounded half-up."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.work import (
    EXPENSES,
    accept,
    amend,
    billing_run,
    expense,
    get_entry,
    get_invoice,
    new_contract,
    one_time,
    post_expenses,
    post_time,
    time_entry,
    tm,
)


def summary(invoice: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, net, tax) of every line, sorted."""
    return sorted((line["kind"], line["net"], line["tax"]) for line in invoice["lines"])


async def transactions_of(api, keys, time_ids: list[str], expense_ids: list[str]) -> dict[str, tuple]:  # noqa: ANN001
    """Every transaction of the entries by id: (external id, kind, amount, invoice id)."""
    found: dict[str, tuple] = {}
    for ids, path in ((time_ids, "/process/v1/time-entries"), (expense_ids, EXPENSES)):
        for external_id in ids:
            entry = await get_entry(api, keys, external_id, path=path)
            for t in entry["transactions"]:
                found[t["id"]] = (external_id, t["kind"], t["amount"], t["invoice_id"])
    return found


def walk_back(invoice: dict[str, Any], found: dict[str, tuple]) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """For each time or expense line (kind, net): the (external id, transaction kind) behind it; each
    line's net is the sum of the amounts its entries report for those transactions."""
    walked = {}
    for line in invoice["lines"]:
        if line["kind"] == "milestone":
            continue
        behind = [found[i] for i in line["transaction_ids"]]
        assert all(t[3] == invoice["id"] for t in behind), (line, behind)
        assert sum((Decimal(t[2]) for t in behind), Decimal(0)) == Decimal(line["net"]), (line, behind)
        walked[(line["kind"], line["net"])] = {(t[0], t[1]) for t in behind}
    return walked


async def test_a_run_over_every_kind_of_transaction_groups_lines_as_designed(api, keys):
    contract_id = await new_contract(
        api,
        keys,
        tm(
            time_cap="4000.00",
            rate_card=[
                {"role": "consultant", "rate": "200.00", "effective_from": "2026-01-05"},
                {"role": "architect", "rate": "300.00", "effective_from": "2026-01-05"},
            ],
            reimbursable_expenses=[{"category": "travel", "cap": "1000.00"}, {"category": "meals", "cap": "200.00"}],
            milestones=[
                {"key": "M1", "name": "Kickoff", "amount": "5000.00", "due_date": "2026-02-27", "depends_on": []},
                {"key": "M2", "name": "Handover", "amount": "2500.00", "due_date": "2026-03-31", "depends_on": ["M1"]},
            ],
        ),
    )
    # February: consultant 1600 + 1600, architect 4 h = 1200 of which 4000 - 3200 = 800 fits, 400 held.
    await post_time(
        api,
        keys,
        [
            time_entry("TE-1", contract_id, "2026-02-02", "8"),
            time_entry("TE-2", contract_id, "2026-02-03", "8"),
            time_entry("TE-3", contract_id, "2026-02-04", "4", role="architect"),
        ],
    )
    await post_expenses(
        api,
        keys,
        [
            expense("EX-1", contract_id, "2026-02-05", "350.00", "USD"),
            expense("EX-2", contract_id, "2026-02-05", "42.50", "USD", category="meals"),
        ],
    )
    m1 = (await accept(api, keys, contract_id, "M1", "2026-02-27T10:00:00Z"))["transaction"]["id"]
    [run1] = await billing_run(api, keys, "2026-02-28", contract_id)
    first = await get_invoice(api, keys, run1["id"])
    assert summary(first) == [
        ("expense", "350.00", "31.06"),  # travel: 350.00 x 8.875 % = 31.0625
        ("expense", "42.50", "3.77"),  # meals: 42.50 x 8.875 % = 3.771875
        ("milestone", "5000.00", "443.75"),  # M1
        ("time", "3200.00", "284.00"),  # consultant @ 200.00: TE-1 + TE-2
        ("time", "800.00", "71.00"),  # architect @ 300.00: TE-3's part within the cap
    ]
    # net 5000 + 3200 + 800 + 350 + 42.50 = 9392.50; tax 443.75 + 284 + 71 + 31.06 + 3.77 = 833.58
    assert (run1["net"], run1["tax"], run1["total"]) == ("9392.50", "833.58", "10226.08")
    [m1_line] = [line for line in first["lines"] if line["kind"] == "milestone"]
    assert m1_line["transaction_ids"] == [m1]

    # Version 2 from 03-01: cap 6000 (room 6000 - 4000 invoiced = 2000 releases TE-3's 400) and the
    # consultant rate written "200" — the same number as version 1's "200.00".
    await amend(
        api,
        keys,
        contract_id,
        2,
        "2026-03-01",
        time_cap="6000.00",
        rate_card=[{"role": "consultant", "rate": "200", "effective_from": "2026-03-01"}],
    )
    await post_time(
        api,
        keys,
        [
            time_entry("TE-6", contract_id, "2026-02-26", "2"),  # 2 x 200.00 (version 1) = 400.00
            time_entry("TE-4", contract_id, "2026-03-02", "5"),  # 5 x 200 (version 2) = 1000.00
        ],
    )
    corrected = await one_time(api, keys, time_entry("TE-1", contract_id, "2026-02-02", "9"))
    assert corrected["adjustment_amount"] == "200.00"  # 9 x 200.00 - 1600.00 invoiced
    # Cap room 2000 in work-date order: adjustment 200 (02-02), release 400 (02-04), TE-6 400, TE-4 1000: all fit.
    await post_expenses(api, keys, [expense("EX-3", contract_id, "2026-03-04", "120.00", "USD")])  # 650 left
    m2 = (await accept(api, keys, contract_id, "M2", "2026-03-05T10:00:00Z"))["transaction"]["id"]

    [run2] = await billing_run(api, keys, "2026-03-31", contract_id)
    second = await get_invoice(api, keys, run2["id"])
    assert summary(second) == [
        ("expense", "120.00", "10.65"),  # travel: 120.00 x 8.875 % = 10.65
        ("milestone", "2500.00", "221.88"),  # M2: 2500.00 x 8.875 % = 221.875 -> 221.88
        ("time", "1400.00", "124.25"),  # consultant @ 200: TE-6 400 + TE-4 1000, one line
        ("time", "200.00", "17.75"),  # consultant adjustment: TE-1's +200
        ("time", "400.00", "35.50"),  # architect @ 300: TE-3's release, on its entry's line
    ]
    # net 2500 + 1400 + 200 + 400 + 120 = 4620.00; tax 221.88 + 124.25 + 17.75 + 35.50 + 10.65 = 410.03
    assert (run2["kind"], run2["net"], run2["tax"], run2["total"]) == ("invoice", "4620.00", "410.03", "5030.03")
    [consultant] = [line for line in second["lines"] if line["net"] == "1400.00"]
    assert Decimal(consultant["quantity"]) == 7 and Decimal(consultant["unit_price"]) == 200
    [adjustment] = [line for line in second["lines"] if line["net"] == "200.00"]
    assert "adjust" in f"{adjustment['key']} {adjustment['description']}".lower()
    [m2_line] = [line for line in second["lines"] if line["kind"] == "milestone"]
    assert m2_line["transaction_ids"] == [m2]

    # Every line walks back to the entries whose GET lists its transactions.
    found = await transactions_of(api, keys, ["TE-1", "TE-2", "TE-3", "TE-4", "TE-6"], ["EX-1", "EX-2", "EX-3"])
    assert walk_back(first, found) == {
        ("expense", "350.00"): {("EX-1", "expense")},
        ("expense", "42.50"): {("EX-2", "expense")},
        ("time", "3200.00"): {("TE-1", "time"), ("TE-2", "time")},
        ("time", "800.00"): {("TE-3", "time")},
    }
    assert walk_back(second, found) == {
        ("expense", "120.00"): {("EX-3", "expense")},
        ("time", "1400.00"): {("TE-6", "time"), ("TE-4", "time")},
        ("time", "200.00"): {("TE-1", "adjustment")},
        ("time", "400.00"): {("TE-3", "release")},
    }
    assert all(i in found for line in second["lines"] if line["kind"] != "milestone" for i in line["transaction_ids"])
    assert await billing_run(api, keys, "2026-12-31", contract_id) == []  # nothing left, nothing twice


async def test_a_run_whose_lines_net_to_zero_still_issues_an_invoice_of_zero(api, keys):
    contract_id = await new_contract(api, keys, tm())
    await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "8"))  # 8 x 200.00 = 1600.00
    [first] = await billing_run(api, keys, "2026-03-02", contract_id)
    assert first["net"] == "1600.00"
    await one_time(api, keys, time_entry("TE-1", contract_id, "2026-03-02", "6"))  # 1200 - 1600 = -400.00
    await one_time(api, keys, time_entry("TE-2", contract_id, "2026-03-03", "2"))  # 2 x 200.00 = 400.00
    [zero] = await billing_run(api, keys, "2026-03-31", contract_id)
    # lines: time 400.00 (tax 35.50) and time adjustment -400.00 (tax -35.50): net 0.00, tax 0.00
    assert (zero["kind"], zero["net"], zero["tax"], zero["total"]) == ("invoice", "0.00", "0.00", "0.00")
    assert summary(await get_invoice(api, keys, zero["id"])) == [
        ("time", "-400.00", "-35.50"),
        ("time", "400.00", "35.50"),
    ]
