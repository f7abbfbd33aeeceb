"""Contracts as the API shows them: the response models that routes build and OpenAPI documents."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from app.canonical.intake import AmendmentApplied, ContractRegistered, Propagation, PropagationState
from app.money import to_str
from app.responses import Amount, ApiModel, ExceptionRef, Page, amount

if TYPE_CHECKING:  # the service builds these from its results; imported for types only (no cycle)
    from process_apis.contracts.amending import AmendmentImpact, AmendmentOutcome
    from process_apis.contracts.propagation_store import PropagationRow
    from process_apis.contracts.service import RegisteredContract

__all__ = [
    "AmendmentApplied",
    "AmendmentPreview",
    "ContractDetail",
    "ContractPage",
    "ContractRegistered",
    "ContractSummary",
    "ContractVersionView",
    "MilestoneView",
    "Propagation",
    "PropagationState",
    "amendment_applied",
    "amendment_preview",
    "contract_registered",
    "propagation",
]

ContractStatus = Literal["active", "blocked"]
BillingModel = Literal["fixed_fee", "time_and_materials"]
MilestoneStatus = Literal["pending", "accepted", "invoiced"]


class ContractVersionView(ApiModel):
    version: int
    effective_date: date = Field(description="In force from this date until the next version's")
    reason: str | None
    total_value: Amount | None
    end_date: date
    time_cap: Amount | None
    customer_tax_id: str | None
    created_at: datetime
    propagation: Propagation


class RateView(ApiModel):
    role: str
    rate: Amount
    effective_from: date = Field(description="When it applies: max(the date asked for, its version's effective date)")
    version: int


class ExpenseAllowanceView(ApiModel):
    category: str
    cap: Amount | None


class MilestoneView(ApiModel):
    key: str
    name: str
    amount: Amount = Field(description="The latest version's amount; an accepted milestone shows its accepted amount")
    due_date: date | None
    depends_on: list[str]
    status: MilestoneStatus
    accepted_at: datetime | None
    reason: Literal["awaiting_milestone_acceptance"] | None = Field(
        None, description="Why is this unbilled? A milestone not accepted yet waits for the client"
    )
    release: str | None = Field(None, description="What would release it, in words")


class CustomerView(ApiModel):
    external_id: str
    name: str


class TaxTermsView(ApiModel):
    jurisdiction: str
    customer_tax_id: str | None


class OpenException(ApiModel):
    id: uuid.UUID
    code: str
    detail: str
    status: Literal["open", "acknowledged"]


class ContractDetail(ApiModel):
    id: uuid.UUID
    source: str
    external_id: str
    number: str
    status: ContractStatus
    customer: CustomerView
    legal_entity: str
    currency: str
    billing_model: BillingModel
    project_id: str | None
    version: int = Field(description="The latest version")
    total_value: Amount | None
    start_date: date
    end_date: date
    time_cap: Amount | None
    tax: TaxTermsView
    rate_card: list[RateView] = Field(description="Every rate of every version; the latest start on a date applies")
    reimbursable_expenses: list[ExpenseAllowanceView] = Field(description="The latest version's categories and caps")
    propagation: Propagation = Field(description="The latest version's propagation")
    versions: list[ContractVersionView]
    milestones: list[MilestoneView] = Field(description="The latest version's milestone plan")
    exceptions: list[OpenException] = Field(description="Unresolved exceptions about this contract")
    created_at: datetime
    updated_at: datetime


class ContractSummary(ApiModel):
    id: uuid.UUID
    number: str
    status: ContractStatus
    currency: str
    billing_model: BillingModel
    version: int
    project_id: str | None
    legal_entity: str
    customer_external_id: str
    created_at: datetime


class ContractPage(Page[ContractSummary]):
    pass


class BeforeAfter(ApiModel):
    before: Amount | None
    after: Amount | None


class RepricedView(ApiModel):
    transaction_id: uuid.UUID
    before: Amount
    after: Amount


class ReleasedView(ApiModel):
    external_id: str
    amount: Amount


class MilestoneChanges(ApiModel):
    added: list[str]
    changed: list[str]
    removed: list[str]


class AmendmentPreview(ApiModel):
    """What the amendment would do, computed by applying it in a transaction that is rolled back."""

    dry_run: Literal[True]
    id: uuid.UUID = Field(description="The contract")
    version: int
    effective_date: date
    total_value: BeforeAfter
    repriced: list[RepricedView] = Field(description="Unbilled transactions whose amount would change")
    released: list[ReleasedView] = Field(description="Held amounts the amendment would release")
    milestones: MilestoneChanges = Field(description="Milestone keys added, changed and removed")
    unbilled: BeforeAfter
    held: BeforeAfter


def propagation(rows: list[PropagationRow]) -> Propagation:
    return Propagation(
        **{
            r.target: PropagationState(
                status=r.status,  # type: ignore[arg-type]
                attempts=r.attempts,
                last_error=r.last_error,
                confirmed_at=r.confirmed_at,
                confirmed_version=r.confirmed_version,
            )
            for r in rows
        }
    )


def contract_registered(result: RegisteredContract) -> ContractRegistered:
    return ContractRegistered(
        id=result.id,
        status=result.status,  # type: ignore[arg-type]
        version=result.version,
        project_id=result.project_id,
        exceptions=[ExceptionRef(id=e.id, code=e.code, detail=e.detail) for e in result.exceptions],
    )


def amendment_applied(outcome: AmendmentOutcome) -> AmendmentApplied:
    return AmendmentApplied(
        id=outcome.contract_id,
        version=outcome.version,
        status=outcome.status,  # type: ignore[arg-type]
        effective_date=outcome.effective_date,
        propagation=propagation(outcome.propagation),
    )


def amendment_preview(impact: AmendmentImpact) -> AmendmentPreview:
    currency = impact.currency
    before, after = impact.balances
    return AmendmentPreview(
        dry_run=True,
        id=impact.contract_id,
        version=impact.version,
        effective_date=impact.effective_date,
        total_value=BeforeAfter(
            before=to_str(impact.total_value[0], currency),
            after=to_str(impact.total_value[1], currency),
        ),
        repriced=[
            RepricedView(
                transaction_id=r.transaction_id, before=amount(r.before, currency), after=amount(r.after, currency)
            )
            for r in impact.reevaluation.repriced
        ],
        released=[
            ReleasedView(external_id=r.external_id, amount=amount(r.amount, currency))
            for r in impact.reevaluation.released
        ],
        milestones=MilestoneChanges(
            added=impact.milestones.added, changed=impact.milestones.changed, removed=impact.milestones.removed
        ),
        unbilled=BeforeAfter(before=amount(before.unbilled, currency), after=amount(after.unbilled, currency)),
        held=BeforeAfter(before=amount(before.held, currency), after=amount(after.held, currency)),
    )
