"""Activation governance, milestone sums, the version in force and the rules of a contract as a whole."""

from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal as D
from typing import Any

import pytest
from pydantic import ValidationError

from app.canonical import ErpCustomer
from app.canonical.contract import ContractIn, dependency_cycles
from app.dev.seed import ACME_CONTRACT
from app.errors import Conflict, ValidationFailed
from process_apis.contracts.rules import LegalEntityFacts, governance_findings, milestone_sum_finding, payload_hash
from process_apis.milestones.rules import VersionSpan, check_acceptance, version_in_force

US01 = LegalEntityFacts("US01", "US", ["USD", "CAD"])


def _findings(**overrides: object) -> list[str]:
    args: dict[str, object] = dict(
        customer_external_id="ACME-001",
        erp_customer=ErpCustomer("ACME-001", "Acme", "US01"),
        legal_entity_code="US01",
        legal_entity=US01,
        currency="USD",
        jurisdiction="US-NY",
        jurisdiction_known=True,
    )
    args.update(overrides)
    return [f.code for f in governance_findings(**args)]  # type: ignore[arg-type]


def test_a_clean_contract_has_no_findings() -> None:
    assert _findings() == []


def test_every_failing_check_is_reported_at_once() -> None:
    assert _findings(erp_customer=None, legal_entity=None, jurisdiction_known=False) == [
        "CUSTOMER_NOT_IN_ERP",
        "UNKNOWN_LEGAL_ENTITY",
        "UNKNOWN_TAX_JURISDICTION",
    ]
    assert _findings(erp_customer=ErpCustomer("ACME-001", "Acme", "GB01"), currency="EUR") == [
        "LEGAL_ENTITY_MISMATCH",
        "CURRENCY_NOT_ALLOWED",
    ]


def test_fixed_fee_milestones_must_sum_to_total_value() -> None:
    assert milestone_sum_finding("fixed_fee", D("300000"), [D("100000"), D("200000.00")]) is None
    finding = milestone_sum_finding("fixed_fee", D("300000"), [D("100000")])
    assert finding is not None and finding.code == "MILESTONES_DO_NOT_SUM"
    assert milestone_sum_finding("time_and_materials", None, []) is None


def test_payload_hash_ignores_key_order_and_trailing_zeros() -> None:
    assert payload_hash({"a": D("300000.00"), "b": [1]}) == payload_hash({"b": [1], "a": D("300000")})
    assert payload_hash({"a": D("1")}) != payload_hash({"a": D("1.01")})


def test_version_one_covers_dates_before_version_two() -> None:
    spans = [VersionSpan(1, date(2026, 1, 5)), VersionSpan(2, date(2026, 6, 1))]
    assert version_in_force(spans, date(2025, 12, 31)) == 1
    assert version_in_force(spans, date(2026, 5, 31)) == 1
    assert version_in_force(spans, date(2026, 6, 1)) == 2


def _accept(**overrides: object) -> None:
    args: dict[str, object] = dict(
        key="M2",
        on=date(2026, 3, 28),
        contract_status="active",
        start_date=date(2026, 1, 5),
        in_force_keys={"M1", "M2"},
        depends_on=["M1"],
        accepted_on={"M1": date(2026, 3, 1)},
    )
    args.update(overrides)
    check_acceptance(**args)  # type: ignore[arg-type]


def test_acceptance_checks_in_order() -> None:
    _accept()
    with pytest.raises(Conflict) as blocked:
        _accept(contract_status="blocked", in_force_keys=set(), accepted_on={})
    assert blocked.value.code == "CONTRACT_BLOCKED"
    with pytest.raises(ValidationFailed) as early:
        _accept(on=date(2026, 1, 4))
    assert early.value.code == "OUTSIDE_CONTRACT_TERM"
    with pytest.raises(Conflict) as not_in_force:
        _accept(in_force_keys={"M1"}, accepted_on={})
    assert not_in_force.value.code == "MILESTONE_NOT_IN_FORCE"
    with pytest.raises(Conflict) as later_prerequisite:
        _accept(accepted_on={"M1": date(2026, 3, 29)})
    assert later_prerequisite.value.code == "PREREQUISITES_NOT_MET"


# --- the contract as a whole (ContractIn) -----------------------------------------------------


def _contract_errors(**changes: Any) -> list[tuple[tuple[str | int, ...], str]]:
    body = copy.deepcopy(ACME_CONTRACT) | changes
    with pytest.raises(ValidationError) as raised:
        ContractIn.model_validate(body)
    return [(tuple(e["loc"]), e["msg"]) for e in raised.value.errors()]


def _milestones(*plan: tuple[str, list[str]]) -> list[dict[str, Any]]:
    return [{"key": key, "name": key, "amount": "1.00", "depends_on": deps} for key, deps in plan]


def test_the_demo_contract_is_valid() -> None:
    assert ContractIn.model_validate(ACME_CONTRACT).currency == "USD"


def test_every_amount_finer_than_the_currency_is_named_at_once() -> None:
    errors = _contract_errors(
        currency="USD",
        total_value="20000.005",
        time_cap="10.001",
        rate_card=[
            {"role": "consultant", "rate": "200.125", "effective_from": "2026-01-05"},
            {"role": "partner", "rate": "400.10", "effective_from": "2026-01-05"},
        ],
        reimbursable_expenses=[{"category": "travel", "cap": "15000.0050"}, {"category": "meals", "cap": None}],
        milestones=[{"key": "M1", "name": "All", "amount": "20000.005"}],
    )
    assert [loc for loc, _ in errors] == [
        ("total_value",),
        ("time_cap",),
        ("rate_card", 0, "rate"),
        ("reimbursable_expenses", 0, "cap"),
        ("milestones", 0, "amount"),
    ]
    assert all("USD amounts have at most 2 decimal places" in msg for _, msg in errors)


@pytest.mark.parametrize(
    ("currency", "fine", "too_fine"),
    [("JPY", "100.00", "100.5"), ("USD", "20000.0000", "20000.0050"), ("KWD", "1.0010", "1.0005")],
)
def test_trailing_zeros_are_fine_extra_decimals_are_not(currency: str, fine: str, too_fine: str) -> None:
    def body(amount: str) -> dict[str, Any]:
        milestones = [{"key": "M1", "name": "All", "amount": amount}]
        return copy.deepcopy(ACME_CONTRACT) | {"currency": currency, "total_value": amount, "milestones": milestones}

    assert ContractIn.model_validate(body(fine)).total_value == D(fine)
    with pytest.raises(ValidationError) as raised:
        ContractIn.model_validate(body(too_fine))
    assert [e["loc"] for e in raised.value.errors()] == [("total_value",), ("milestones", 0, "amount")]


def test_rules_of_the_whole_contract_are_reported_together() -> None:
    errors = _contract_errors(
        end_date="2025-12-31",
        total_value=None,
        reimbursable_expenses=[{"category": "travel"}, {"category": "travel"}],
        milestones=_milestones(("M1", []), ("M1", [])),
    )
    assert [loc for loc, _ in errors] == [
        ("end_date",),
        ("total_value",),
        ("reimbursable_expenses", 1, "category"),
        ("milestones", 1, "key"),
    ]


def test_a_dependency_cycle_is_named_at_the_first_milestone_in_it() -> None:
    errors = _contract_errors(milestones=_milestones(("M0", []), ("M1", ["M2"]), ("M2", ["M1"])))
    assert errors == [(("milestones", 1, "depends_on"), "milestone dependencies form a cycle: M1 → M2 → M1")]


def test_a_self_dependency_and_an_unknown_key_are_named() -> None:
    errors = _contract_errors(milestones=_milestones(("M1", ["M1"]), ("M2", ["M9", "M1", "M8"])))
    assert errors == [
        (("milestones", 0, "depends_on"), "milestone M1 depends on itself (M1 → M1)"),
        (("milestones", 1, "depends_on"), "milestone M2 depends on unknown milestones: M8, M9"),
    ]


def test_a_long_chain_closed_into_a_cycle_is_found_without_recursion() -> None:
    keys = [f"M{i}" for i in range(500)]
    plan = [(key, [keys[i + 1] if i + 1 < len(keys) else keys[0]]) for i, key in enumerate(keys)]
    [(loc, msg)] = _contract_errors(milestones=_milestones(*plan))
    assert loc == ("milestones", 0, "depends_on")
    assert msg.startswith("milestone dependencies form a cycle: M0 → M1 → M2") and msg.endswith("M499 → M0")


def test_dependency_cycles_is_linear_and_iterative() -> None:
    # far beyond Python's recursion limit: a recursive DFS would raise RecursionError
    n = 50_000
    chain = {f"K{i}": [f"K{i + 1}"] for i in range(n - 1)} | {f"K{n - 1}": []}
    assert dependency_cycles(chain) == []
    chain[f"K{n - 1}"] = ["K0"]
    [cycle] = dependency_cycles(chain)
    assert len(cycle) == n and cycle[0] == "K0"


def test_dependency_cycles_finds_one_cycle_per_group_in_input_order() -> None:
    graph = {
        "A": [],
        "B": ["A", "C"],  # B → C → D → B
        "C": ["D"],
        "D": ["B", "A"],
        "E": ["F"],  # E ⇄ F, and E depends on the first group without being in it
        "F": ["E", "B"],
        "G": ["B", "E"],  # downstream of both cycles, in none
    }
    assert dependency_cycles(graph) == [["B", "C", "D"], ["E", "F"]]
    diamond = {"A": [], "B": ["A"], "C": ["A"], "D": ["B", "C"]}
    assert dependency_cycles(diamond) == []


def test_a_cycle_inside_a_larger_group_is_a_real_cycle() -> None:
    # one strongly connected group with several cycles: the one reported must exist edge by edge
    graph = {"A": ["B"], "B": ["C", "A"], "C": ["B", "D"], "D": ["A"]}
    [cycle] = dependency_cycles(graph)
    assert set(cycle) <= set(graph) and len(set(cycle)) == len(cycle)
    for here, there in zip(cycle, [*cycle[1:], cycle[0]], strict=True):
        assert there in graph[here]
