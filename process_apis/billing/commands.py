"""Billing requests."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BillingRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: date
    legal_entity: str | None = Field(default=None, max_length=64)
    contract_id: uuid.UUID | None = None
    contract_ids: list[uuid.UUID] | None = Field(default=None, max_length=10_000)

    @model_validator(mode="after")
    def _one_scope(self) -> BillingRunIn:
        if self.contract_id is not None and self.contract_ids is not None:
            raise ValueError("give contract_id or contract_ids, not both")
        return self

    def scope_ids(self) -> list[uuid.UUID] | None:
        if self.contract_id is not None:
            return [self.contract_id]
        return self.contract_ids


class InvoiceQuery(BaseModel):
    contract_id: uuid.UUID | None = None
    status: Literal["draft", "queued", "posting", "posted", "blocked", "failed"] | None = None
    limit: int = Field(default=50, ge=1, le=500)
    after: str | None = None
