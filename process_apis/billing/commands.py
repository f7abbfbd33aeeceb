"""Billing requests."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.types import BusinessDate


class BillingRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: BusinessDate
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
