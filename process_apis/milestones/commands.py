"""Milestone acceptance as the customer (or PM on their behalf) records it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.types import BusinessDateTime


class AcceptanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Bounded like every business time: the acceptance date is invoiced and posted to the ERP.
    accepted_at: BusinessDateTime
    accepted_by: str | None = Field(default=None, max_length=300)
    evidence_uri: str | None = Field(default=None, max_length=2000)
