"""The ledger's pure rules, amounts computed by hand: pricing, precedence, caps, settlement."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal as D

from process_apis.ledger.records import EntryBook, EntryContent, Judged, Pending, RateStart, WorkTerms
from process_apis.ledger.rules import Demand, adjust, allocate_caps, price_expense, price_time, rate_on
from process_apis.ledger.settlement import settle

CONTRACT = uuid.UUID(int=1)


def terms(**changes: object) -> WorkTerms:
    base: dict[str, object] = dict(
        contract_id=CONTRACT,
        currency="USD",
        billing_model="time_and_materials",
        blocked=False,
        start_date=date(2026, 1, 5),
        end_date=date(2026, 12, 18),
        time_cap=None,
        allowances={"travel": D("1000.00"), "meals": None},
        rates=(
            RateStart("consultant", D("200.00"), date(2026, 1, 5), 1),
            RateStart("consultant", D("220.00"), date(2026, 6, 1), 2),
            RateStart("consultant", D("230.00"), date(2026, 6, 1), 3),
        ),
    )
    base.update(changes)
    return WorkTerms(**base)  # type: ignore[arg-type]


def hours(h: str, day: date = date(2026, 3, 2), **changes: object) -> EntryContent:
    fields: dict[str, object] = dict(kind="time", contract_id=CONTRACT, service_date=day, role="consultant", hours=D(h))
    fields.update(changes)
    return EntryContent(**fields)  # type: ignore[arg-type]


def spend(amount: str, currency: str = "USD", category: str = "travel", **changes: object) -> EntryContent:
    fields: dict[str, object] = dict(
        kind="expense",
        contract_id=CONTRACT,
        service_date=date(2026, 3, 2),
        category=category,
        amount=D(amount),
        currency=currency,
    )
    fields.update(changes)
    return EntryContent(**fields)  # type: ignore[arg-type]


def test_the_rate_for_a_date_is_the_latest_start_across_versions_and_a_tie_goes_to_the_newer():
    rates = terms().rates
    assert rate_on(rates, "consultant", date(2026, 5, 31)) == D("200.00")
    assert rate_on(rates, "consultant", date(2026, 6, 1)) == D("230.00")  # v2 and v3 start together: v3
    assert rate_on(rates, "consultant", date(2026, 1, 4)) is None
    assert rate_on(rates, "architect", date(2026, 6, 1)) is None


def test_time_is_hours_times_rate_rounded_half_up():
    priced = price_time(terms(rates=(RateStart("consultant", D("133.33"), date(2026, 1, 5), 1),)), hours("2.5"))
    assert (priced.billing, priced.value, priced.rate) == ("billable", D("333.33"), D("133.33"))  # 333.325


def test_precedence_void_then_blocked_then_term_then_fixed_fee_then_rate():
    outside = date(2027, 1, 4)
    assert price_time(terms(blocked=True), hours("1", outside, voided=True)).code == "VOIDED"
    assert price_time(terms(blocked=True), hours("1", outside)).code == "CONTRACT_BLOCKED"
    assert price_time(terms(billing_model="fixed_fee"), hours("1", outside)).code == "OUTSIDE_CONTRACT_TERM"
    assert price_time(terms(billing_model="fixed_fee"), hours("1", role="nobody")).code == "FIXED_FEE"
    held = price_time(terms(), hours("1", role="nobody"))
    assert (held.billing, held.code, held.value) == ("held", "RATE_NOT_FOUND", None)


def test_fixed_fee_time_is_cost_only():
    priced = price_time(terms(billing_model="fixed_fee"), hours("7.5", cost_rate=D("95.50")))
    assert (priced.billing, priced.code, priced.value, priced.cost) == ("non_billable", "FIXED_FEE", D(0), D("716.25"))


def test_expenses_convert_at_the_days_rate_into_the_contract_currencys_minor_units():
    assert price_expense(terms(), spend("123.45", "EUR"), D("0.8571")).value == D("105.81")  # 105.808995
    assert price_expense(terms(currency="JPY"), spend("500.25", "USD"), D("100")).value == D("50025")
    assert price_expense(terms(currency="JPY"), spend("2.265", "KWD"), D("100")).value == D("227")  # 226.5
    assert price_expense(terms(currency="KWD"), spend("10.10", "USD"), D("0.33")).value == D("3.333")  # 3.333
    assert price_expense(terms(), spend("10", category="gifts"), D(1)).code == "NOT_REIMBURSABLE"
    missing = price_expense(terms(), spend("10", "EUR"), None)
    assert (missing.billing, missing.code, missing.value) == ("held", "FX_RATE_MISSING", None)


def _demand(n: int, day: int, amount: str, external_id: str, source: str = "kantata") -> Demand:
    return Demand(uuid.UUID(int=n), date(2026, 3, day), external_id, source, D(amount))


def test_caps_allocate_in_work_date_order_ties_by_code_point_then_source_and_split_the_straddler():
    demands = [
        _demand(1, 3, "1600", "TE-9"),
        _demand(2, 3, "1600", "TE-10"),  # "TE-10" < "TE-9" by code point
        _demand(3, 2, "1000", "TE-X"),
        _demand(4, 3, "100", "TE-10", "harvest"),  # same id, "harvest" < "kantata"
    ]
    got = allocate_caps(demands, D("3000"))
    # 1000 (TE-X, 2 March) + 100 (harvest TE-10) + 1600 (TE-10) = 2700; TE-9 gets the last 300.
    assert [got[uuid.UUID(int=n)] for n in (3, 4, 2, 1)] == [D("1000"), D("100"), D("1600"), D("300")]
    assert allocate_caps(list(reversed(demands)), D("3000")) == got  # arrival order does not matter


def test_a_credit_frees_room_first_and_is_never_held():
    got = allocate_caps([_demand(1, 2, "500", "A"), _demand(2, 9, "-300", "B")], D("300"))
    assert got == {uuid.UUID(int=1): D("500"), uuid.UUID(int=2): D("-300")}  # room 300 + 300
    assert allocate_caps([_demand(1, 2, "500", "A")], D("-50")) == {uuid.UUID(int=1): D(0)}  # over-invoiced
    assert adjust(D("1300.00"), D("1600.00")) == D("-300.00")
    assert adjust(None, D("1600.00")) == D("-1600.00")  # no value: a full credit


def _book(n: int, **changes: object) -> EntryBook:
    fields: dict[str, object] = dict(
        id=uuid.UUID(int=n),
        kind="time",
        contract_id=CONTRACT,
        source="kantata",
        external_id=f"TE-{n}",
        service_date=date(2026, 3, n),
        role="consultant",
        category=None,
        rate=D("200.00"),
        billing="billable",
        code=None,
        value=D("1600.00"),
        adjusting=False,
    )
    fields.update(changes)
    return EntryBook(**fields)  # type: ignore[arg-type]


def test_settlement_splits_a_new_entry_and_a_raised_cap_releases_as_its_own_transaction():
    t = terms(time_cap=D("2500.00"))
    first = _book(1, pending=(Pending(uuid.UUID(int=101), "time", D("1600.00"), "billable"),))
    new = _book(2, is_new=True, billing="held", value=None)
    judged = Judged(new, price_time(t, hours("8", date(2026, 3, 2))), hours("8", date(2026, 3, 2)), False, True, 1)
    plan = settle({CONTRACT: t}, [judged], [first], {})
    s = plan.settled[new.id]
    assert (s.billing, s.code, s.billable, s.held) == ("billable", "CAP_EXCEEDED", D("900.00"), D("700.00"))
    assert sorted((w.billing, w.amount) for w in plan.inserts) == [("billable", D("900.00")), ("held", D("700.00"))]

    # Stored as planned; the cap is raised to 4000: the 700.00 is released as a `release`.
    held_id = next(w.id for w in plan.inserts if w.billing == "held")
    part_id = next(w.id for w in plan.inserts if w.billing == "billable")
    stored = _book(
        2,
        code="CAP_EXCEEDED",
        pending=(Pending(part_id, "time", D("900.00"), "billable"), Pending(held_id, "time", D("700.00"), "held")),
    )
    raised = settle({CONTRACT: terms(time_cap=D("4000.00"))}, [], [first, stored], {})
    assert [(w.kind, w.amount) for w in raised.inserts] == [("release", D("700.00"))]
    assert raised.superseded == [held_id]
    assert [(r.external_id, r.amount) for r in raised.released] == [("TE-2", D("700.00"))]
    assert raised.settled[stored.id].code is None and raised.settled[stored.id].held is None


def test_a_correction_after_invoicing_bills_only_the_difference_as_an_adjustment():
    t = terms()
    invoiced = _book(1, invoiced=D("1600.00"), has_invoiced=True)
    content = hours("6.5", date(2026, 3, 4))
    plan = settle({CONTRACT: t}, [Judged(invoiced, price_time(t, content), content, True, True, 2)], [], {})
    # 6.5 x 200.00 = 1300.00; 1300.00 - 1600.00 = -300.00, dated on the new work date.
    [w] = plan.inserts
    assert (w.kind, w.amount, w.service_date, w.is_adjustment) == ("adjustment", D("-300.00"), date(2026, 3, 4), True)
    s = plan.settled[invoiced.id]
    assert (s.billable, s.adjustment) == (D("1300.00"), D("-300.00"))
