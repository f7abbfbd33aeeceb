"""Milestone acceptance as the customer (or PM on their behalf) records it."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class AcceptanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accepted_at: AwareDatetime
    accepted_by: str | None = Field(default=None, max_length=300)
    evidence_uri: str | None = Field(default=None, max_length=2000)
