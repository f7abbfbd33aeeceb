"""Contracts as the API shows them: the response models that routes build and OpenAPI documents."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import Field

from app.canonical.intake import AmendmentApplied, ContractRegistered, Propagation, PropagationState
from app.responses import Amount, ApiModel, Page

__all__ = [
    "AmendmentApplied",
    "ContractDetail",
    "ContractPage",
    "ContractRegistered",
    "ContractSummary",
    "ContractVersionView",
    "MilestoneView",
    "Propagation",
    "PropagationState",
]

ContractStatus = Literal["active", "blocked"]
BillingModel = Literal["fixed_fee", "time_and_materials"]
MilestoneStatus = Literal["pending", "accepted", "invoiced"]


class ContractVersionView(ApiModel):
    version: int
    effective_date: date
    reason: str | None
    total_value: Amount | None
    created_at: datetime
    propagation: Propagation


class MilestoneView(ApiModel):
    key: str
    name: str
    amount: Amount = Field(description="The latest version's amount; an accepted milestone shows its accepted amount")
    due_date: date | None
    depends_on: list[str]
    status: MilestoneStatus
    accepted_at: datetime | None


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
