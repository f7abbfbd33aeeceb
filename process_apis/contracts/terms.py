"""A contract's terms as of one version: what amendments start from and lead to (pure data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from app.canonical.contract import ContractIn, MilestoneIn

__all__ = ["Allowance", "Identity", "Milestone", "Rate", "Terms", "milestone_of", "terms_of"]


@dataclass(frozen=True)
class Rate:
    role: str
    rate: Decimal
    effective_from: date  # when it applies: max(requested_from, the amendment's effective date)
    requested_from: date  # what the contract or amendment asked for
    version: int


@dataclass(frozen=True)
class Allowance:
    category: str
    cap: Decimal | None


@dataclass(frozen=True)
class Milestone:
    key: str
    name: str
    amount: Decimal
    due_date: date | None
    depends_on: tuple[str, ...]


@dataclass(frozen=True)
class Terms:
    """A contract's terms as of one version (the state an amendment starts from or leads to)."""

    version: int
    effective_date: date
    billing_model: str
    currency: str
    start_date: date
    end_date: date
    total_value: Decimal | None
    time_cap: Decimal | None
    customer_tax_id: str | None
    rate_card: tuple[Rate, ...]  # every rate of this version and the earlier ones
    allowances: tuple[Allowance, ...]
    milestones: tuple[Milestone, ...]


@dataclass(frozen=True)
class Identity:
    """What makes a contract this contract: no amendment changes it."""

    number: str
    legal_entity: str
    customer_external_id: str
    tax_jurisdiction: str


def terms_of(contract: ContractIn, version: int = 1, effective_date: date | None = None) -> Terms:
    """The terms a whole canonical contract states (version 1, or a CRM's whole new state)."""
    return Terms(
        version=version,
        effective_date=effective_date or contract.start_date,
        billing_model=contract.billing_model,
        currency=contract.currency,
        start_date=contract.start_date,
        end_date=contract.end_date,
        total_value=contract.total_value,
        time_cap=contract.time_cap,
        customer_tax_id=contract.tax.customer_tax_id,
        rate_card=tuple(Rate(r.role, r.rate, r.effective_from, r.effective_from, version) for r in contract.rate_card),
        allowances=tuple(Allowance(a.category, a.cap) for a in contract.reimbursable_expenses),
        milestones=tuple(milestone_of(m) for m in contract.milestones),
    )


def milestone_of(m: MilestoneIn) -> Milestone:
    return Milestone(m.key, m.name, m.amount, m.due_date, tuple(m.depends_on))
