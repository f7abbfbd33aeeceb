"""Invoice lines and tax, computed by hand."""

from __future__ import annotations

from decimal import Decimal as D

from process_apis.billing.rules import Billable, build_lines, invoice_kind, line_tax


def _time(tid: str, role: str, rate: str, hours: str, adjustment: bool = False) -> Billable:
    amount = D(hours) * D(rate)
    return Billable(tid, "time", amount, D(hours), D(rate), role, None, None, None, adjustment)


def _milestone(tid: str, key: str, amount: str) -> Billable:
    return Billable(tid, "milestone", D(amount), D(1), D(amount), None, None, key, f"Milestone {key}", False)


def test_time_groups_by_role_rate_and_adjustment_and_milestones_stand_alone() -> None:
    lines = build_lines(
        [
            _time("t1", "consultant", "200.00", "7.5"),
            _time("t2", "consultant", "200.00", "2"),
            _time("t3", "consultant", "220.00", "1"),
            _time("t4", "consultant", "200.00", "-1", adjustment=True),
            _milestone("m1", "M1", "100000.00"),
            _milestone("m2", "M2", "120000.00"),
        ]
    )
    summary = [(line.kind, line.key, line.quantity, line.net, line.transaction_ids) for line in lines]
    assert summary == [
        ("milestone", "M1", D(1), D("100000.00"), ["m1"]),
        ("milestone", "M2", D(1), D("120000.00"), ["m2"]),
        ("time", "consultant@200.00", D("9.5"), D("1900.000"), ["t1", "t2"]),
        ("time", "consultant@200.00:adjustment", D(-1), D("-200.00"), ["t4"]),
        ("time", "consultant@220.00", D(1), D("220.00"), ["t3"]),
    ]


def test_line_tax_is_rounded_half_up_per_line() -> None:
    assert line_tax(D("100000.00"), D("0.08875"), "USD") == D("8875.00")
    assert line_tax(D("10.10"), D("0.08875"), "USD") == D("0.90")  # 0.8963750 -> 0.90
    assert line_tax(D("-10.10"), D("0.08875"), "USD") == D("-0.90")
    assert line_tax(D("1005"), D("0.19"), "JPY") == D("191")  # 190.95 -> 191


def test_negative_net_is_a_credit_note() -> None:
    assert invoice_kind(D("-0.01")) == "credit_note"
    assert invoice_kind(D("0")) == "invoice"
