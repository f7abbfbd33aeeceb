"""Activation governance, milestone sums and the version in force."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from app.canonical import ErpCustomer
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
