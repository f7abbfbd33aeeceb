"""Contract requests as CRM sends them (validated by pydantic, documented in OpenAPI)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.errors import field_error
from app.types import Code, CurrencyCode, ExternalId, NonNegativeMoney, PositiveMoney


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerRef(_Strict):
    external_id: ExternalId
    name: str = Field(min_length=1, max_length=300)


class RateCardEntry(_Strict):
    role: str = Field(min_length=1, max_length=100)
    rate: NonNegativeMoney
    effective_from: date


class ExpenseAllowance(_Strict):
    category: str = Field(min_length=1, max_length=100)
    cap: NonNegativeMoney | None = None


class MilestoneIn(_Strict):
    key: Code
    name: str = Field(min_length=1, max_length=300)
    amount: PositiveMoney
    due_date: date | None = None
    depends_on: list[Code] = Field(default_factory=list)


class TaxTerms(_Strict):
    jurisdiction: str = Field(pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$", description="e.g. US-NY, GB, DE")
    customer_tax_id: str | None = Field(default=None, max_length=50)


class DocumentRef(_Strict):
    uri: str = Field(min_length=1, max_length=2000)
    sha256: str | None = Field(default=None, max_length=128)


class ContractIn(_Strict):
    source: Code
    external_id: ExternalId
    number: str = Field(min_length=1, max_length=100)
    customer: CustomerRef
    legal_entity: Code
    currency: CurrencyCode
    billing_model: Literal["fixed_fee", "time_and_materials"]
    total_value: PositiveMoney | None = None
    start_date: date
    end_date: date
    rate_card: list[RateCardEntry] = Field(default_factory=list, max_length=500)
    time_cap: NonNegativeMoney | None = None
    reimbursable_expenses: list[ExpenseAllowance] = Field(default_factory=list, max_length=100)
    milestones: list[MilestoneIn] = Field(default_factory=list, max_length=500)
    tax: TaxTerms
    document: DocumentRef | None = None
    signed_at: datetime | None = None

    @model_validator(mode="after")
    def _coherent(self) -> ContractIn:
        if self.end_date < self.start_date:
            raise field_error("end_date", "must not be before start_date")
        if self.billing_model == "fixed_fee" and self.total_value is None:
            raise field_error("total_value", "a fixed_fee contract needs total_value")
        keys = [m.key for m in self.milestones]
        if len(set(keys)) != len(keys):
            raise field_error("milestones", "milestone keys must be unique")
        for m in self.milestones:
            unknown = set(m.depends_on) - set(keys)
            if unknown:
                raise field_error("milestones", f"milestone {m.key} depends on unknown milestones: {sorted(unknown)}")
        categories = [e.category for e in self.reimbursable_expenses]
        if len(set(categories)) != len(categories):
            raise field_error("reimbursable_expenses", "categories must be unique")
        return self


class ContractQuery(BaseModel):
    customer: str | None = None
    status: Literal["active", "blocked"] | None = None
    limit: int = Field(default=50, ge=1, le=500)
    after: str | None = None
