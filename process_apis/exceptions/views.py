"""Exceptions (work items) as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from app.responses import ApiModel, Page

Queue = Literal["integration", "delivery", "finance"]
ExceptionStatus = Literal["open", "acknowledged", "resolved"]


class Subject(ApiModel):
    type: str = Field(description="contract | invoice")
    id: str


class ExceptionView(ApiModel):
    id: uuid.UUID
    code: str
    queue: Queue
    status: ExceptionStatus
    subject: Subject
    contract_id: uuid.UUID | None = Field(description="The contract the subject belongs to")
    group_key: str = Field(description="Exceptions fixed by the same change share it: retry them together")
    count: int = Field(description="How often it happened while open")
    owner: str | None
    sla_due_at: datetime
    detail: str
    actions: list[Literal["retry"]]
    note: str | None
    correlation_id: str | None
    created_at: datetime
    updated_at: datetime


class ExceptionPage(Page[ExceptionView]):
    pass


class GroupRetried(ApiModel):
    group_key: str
    retried: int
    resolved: int = Field(description="How many of the group are resolved after the retry")
