"""The amendment rules of docs/billing.md, one test per rule, without I/O."""

from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from app.canonical.contract import ACME_CHANGE_ORDER, ACME_EXAMPLE, AmendmentIn, ContractIn
from process_apis.contracts.amendment_rules import amended_terms, amendment_violations, milestone_impact, new_rates
from process_apis.contracts.terms import Identity, terms_of
from process_apis.contracts.whole_state import derive_changes, unamendable_fields

ACME = terms_of(ContractIn.model_validate(ACME_EXAMPLE))


def amendment(effective: str = "2026-06-01", version: int = 2, **changes: Any) -> AmendmentIn:
    return AmendmentIn.model_validate({"version": version, "effective_date": effective, "changes": changes})


def codes(a: AmendmentIn, accepted: tuple[str, ...] = ()) -> list[str]:
    return [v.code for v in amendment_violations(ACME, a, set(accepted))]


def test_the_change_order_applies_and_adds_m4_after_m3():
    co = AmendmentIn.model_validate(ACME_CHANGE_ORDER)
    assert codes(co) == []
    after = amended_terms(ACME, co)
    assert after.total_value == Decimal("360000.00") and after.version == 2
    assert [(m.key, m.depends_on) for m in after.milestones][-1] == ("M4", ("M3",))
    assert [(a.category, a.cap) for a in after.allowances] == [("travel", Decimal("20000.00"))]
    assert milestone_impact(ACME, after).added == ["M4"]


@pytest.mark.parametrize(
    ("effective", "end", "expected"),
    [
        ("2026-01-04", None, ["INVALID_EFFECTIVE_DATE"]),  # before the start
        ("2026-12-19", None, ["INVALID_EFFECTIVE_DATE"]),  # after the end
        ("2026-12-19", "2027-03-31", []),  # within the term as amended
        ("2026-06-01", "2026-12-17", ["INVALID_END_DATE"]),  # end_date may only extend
        ("2026-12-18", "2026-12-18", []),  # the same end is no change; the last day is in the term
    ],
)
def test_effective_and_end_dates(effective: str, end: str | None, expected: list[str]):
    changes = {"end_date": end} if end else {}
    assert codes(amendment(effective, **changes)) == expected


def test_an_effective_date_before_the_previous_versions_is_refused():
    v2 = amended_terms(ACME, amendment("2026-06-01"))
    assert [v.code for v in amendment_violations(v2, amendment("2026-05-31", 3), set())] == ["INVALID_EFFECTIVE_DATE"]
    assert amendment_violations(v2, amendment("2026-06-01", 3), set()) == []


def test_milestone_codes_all_at_once_in_the_documented_order():
    a = amendment(
        "2025-01-01",
        end_date="2026-01-31",
        add_milestones=[{"key": "M1", "name": "again", "amount": "1"}],
        update_milestones=[{"key": "M7", "name": "x"}, {"key": "M2", "amount": "1.00"}],
        remove_milestones=["M9"],
    )
    assert codes(a, accepted=("M2",)) == [
        "INVALID_EFFECTIVE_DATE",
        "INVALID_END_DATE",
        "UNKNOWN_MILESTONE",
        "UNKNOWN_MILESTONE",
        "DUPLICATE_MILESTONE",
        "MILESTONE_ACCEPTED",
        "MILESTONES_DO_NOT_SUM",
    ]


def test_an_accepted_milestone_may_be_renamed_or_rescheduled_but_not_repriced_or_removed():
    assert codes(amendment(update_milestones=[{"key": "M1", "name": "D", "due_date": "2026-04-30"}]), ("M1",)) == []
    assert codes(amendment(update_milestones=[{"key": "M1", "amount": "100000"}]), ("M1",)) == []  # same amount
    assert "MILESTONE_ACCEPTED" in codes(amendment(update_milestones=[{"key": "M2", "depends_on": []}]), ("M2",))
    assert "MILESTONE_ACCEPTED" in codes(amendment(remove_milestones=["M3"]), ("M3",))


def test_removing_a_prerequisite_or_depending_on_a_missing_milestone_is_unknown():
    assert codes(amendment(remove_milestones=["M2"], total_value="180000.00")) == ["UNKNOWN_MILESTONE"]
    added = {"key": "M4", "name": "x", "amount": "1", "depends_on": ["M8"]}
    assert codes(amendment(add_milestones=[added], total_value="300001")) == ["UNKNOWN_MILESTONE"]


def test_a_dependency_cycle_is_refused_and_found_on_a_long_chain():
    assert codes(amendment(update_milestones=[{"key": "M1", "depends_on": ["M3"]}])) == ["MILESTONE_DEPENDENCY_CYCLE"]
    # 500 added milestones in a chain closed into a cycle: found in linear time, no recursion limit.
    chain = [{"key": f"X{i}", "name": "x", "amount": "1", "depends_on": [f"X{(i + 1) % 500}"]} for i in range(500)]
    found = codes(amendment(add_milestones=chain, total_value="300500"))
    assert found == ["MILESTONE_DEPENDENCY_CYCLE"]


def test_a_fixed_fee_plan_must_still_add_up():
    assert codes(amendment(total_value="360000.00")) == ["MILESTONES_DO_NOT_SUM"]
    assert codes(amendment(update_milestones=[{"key": "M3", "amount": "80000.01"}])) == ["MILESTONES_DO_NOT_SUM"]


def test_amounts_finer_than_the_currency_are_refused():
    assert codes(amendment(time_cap="10.005")) == ["INVALID_AMOUNT"]


def test_a_null_time_cap_removes_the_cap_and_an_absent_one_keeps_it():
    capped = amended_terms(ACME, amendment(time_cap="5000.00"))
    assert capped.time_cap == Decimal("5000.00")
    assert amended_terms(capped, amendment("2026-07-01", 3)).time_cap == Decimal("5000.00")
    assert amended_terms(capped, amendment("2026-07-01", 3, time_cap=None)).time_cap is None


def test_rates_merge_by_role_and_apply_from_the_later_of_their_date_and_the_effective_date():
    a = amendment(
        rate_card=[
            {"role": "consultant", "rate": "210.00", "effective_from": "2026-04-01"},
            {"role": "consultant", "rate": "220.00", "effective_from": "2026-05-01"},
            {"role": "consultant", "rate": "230.00", "effective_from": "2026-09-01"},
        ]
    )
    stored = [(r.rate, r.effective_from, r.requested_from) for r in new_rates(a)]
    # Two asked before June land on June 1st: the one asked to start later is the one in force then.
    assert stored == [
        (Decimal("220.00"), date(2026, 6, 1), date(2026, 5, 1)),
        (Decimal("230.00"), date(2026, 9, 1), date(2026, 9, 1)),
    ]
    after = amended_terms(ACME, a)
    assert [(r.rate, r.effective_from) for r in after.rate_card] == [
        (Decimal("200.00"), date(2026, 1, 5)),
        (Decimal("220.00"), date(2026, 6, 1)),
        (Decimal("230.00"), date(2026, 9, 1)),
    ]


def test_a_duplicate_rate_or_category_in_one_list_is_a_validation_error():
    with pytest.raises(ValidationError):
        amendment(reimbursable_expenses=[{"category": "travel"}, {"category": "travel"}])
    with pytest.raises(ValidationError):
        amendment(rate_card=[{"role": "a", "rate": "1", "effective_from": "2026-06-01"}] * 2)
    duplicated = copy.deepcopy(ACME_EXAMPLE)
    duplicated["rate_card"] = duplicated["rate_card"] * 2  # type: ignore[operator]
    with pytest.raises(ValidationError, match="two rates"):
        ContractIn.model_validate(duplicated)


def whole(**changes: Any) -> ContractIn:
    body = copy.deepcopy(ACME_EXAMPLE)
    body.update(changes)
    return ContractIn.model_validate(body)


def test_the_changes_between_two_whole_states_rebuild_the_new_state():
    new = whole(
        total_value="360000.00",
        end_date="2027-01-31",
        time_cap="9000.00",
        milestones=[
            *ACME_EXAMPLE["milestones"][:2],  # type: ignore[index]
            {
                "key": "M3",
                "name": "Rollout (wave 1)",
                "amount": "80000.00",
                "due_date": "2026-10-31",
                "depends_on": ["M2"],
            },
            {
                "key": "M4",
                "name": "Rollout wave 2",
                "amount": "60000.00",
                "due_date": "2026-11-30",
                "depends_on": ["M3"],
            },
        ],
        rate_card=[
            {"role": "consultant", "rate": "200.00", "effective_from": "2026-01-05"},
            {"role": "consultant", "rate": "220.00", "effective_from": "2026-06-01"},
        ],
        tax={"jurisdiction": "US-NY", "customer_tax_id": "12-3456789"},
    )
    changes = derive_changes(ACME, terms_of(new))
    assert changes.model_dump(exclude_unset=True, mode="json") == {
        "total_value": "360000.00",
        "time_cap": "9000.00",
        "end_date": "2027-01-31",
        "tax": {"customer_tax_id": "12-3456789"},
        "rate_card": [{"role": "consultant", "rate": "220.00", "effective_from": "2026-06-01"}],
        "add_milestones": [
            {
                "key": "M4",
                "name": "Rollout wave 2",
                "amount": "60000.00",
                "due_date": "2026-11-30",
                "depends_on": ["M3"],
            }
        ],
        "update_milestones": [{"key": "M3", "name": "Rollout (wave 1)"}],
    }
    a = AmendmentIn(version=2, effective_date=date(2026, 6, 1), changes=changes)
    after = amended_terms(ACME, a)
    assert after.total_value == Decimal("360000.00") and after.customer_tax_id == "12-3456789"
    assert [m.key for m in after.milestones] == ["M1", "M2", "M3", "M4"]
    # Sent again as the whole state of version 3, nothing is new: the rate asked from June is known.
    assert derive_changes(after, terms_of(new)).model_dump(exclude_unset=True) == {}


def test_a_removed_cap_and_a_removed_milestone_are_derived_too():
    capped = amended_terms(ACME, amendment(time_cap="5000.00"))
    new = whole(milestones=ACME_EXAMPLE["milestones"][:2], total_value="220000.00")  # type: ignore[index]
    changes = derive_changes(capped, terms_of(new))
    assert changes.removes_time_cap and changes.remove_milestones == ["M3"]


def test_fields_no_amendment_can_change_are_named():
    identity = Identity("SOW-2026-014", "US01", "ACME-001", "US-NY")
    assert unamendable_fields(identity, ACME, whole()) == []
    changed = whole(currency="EUR", legal_entity="DE01", start_date="2026-02-01", number="SOW-X")
    assert unamendable_fields(identity, ACME, changed) == ["number", "legal_entity", "currency", "start_date"]
