"""Exceptions (work items), their history, groups and kinds as the API shows them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from app.responses import ApiModel, Page

Queue = Literal["integration", "delivery", "finance"]
ExceptionStatus = Literal["open", "acknowledged", "resolved"]
TransitionAction = Literal["opened", "repeated", "acknowledged", "resolved", "retried", "assigned"]


class Subject(ApiModel):
    type: str = Field(description="contract | invoice | inbound_event")
    id: str


class ExceptionView(ApiModel):
    id: uuid.UUID
    code: str
    queue: Queue
    status: ExceptionStatus
    subject: Subject
    contract_id: uuid.UUID | None = Field(description="The contract the subject belongs to")
    group_key: str = Field(description="Exceptions fixed by the same change share it: retry them together")
    count: int = Field(description="How often it happened while open (a repeat bumps it; no new item opens)")
    owner: str | None
    sla_due_at: datetime = Field(description="created_at + the SLA its kind had when it opened")
    detail: str
    actions: list[Literal["retry"]]
    note: str | None = Field(description="The latest note")
    correlation_id: str | None
    created_at: datetime
    updated_at: datetime


class Transition(ApiModel):
    action: TransitionAction
    from_status: ExceptionStatus | None = Field(description="null when it opened")
    to_status: ExceptionStatus
    actor: str | None = Field(
        description="The API client that did it; null when psbridge did it by itself (opened, repeated, "
        "or resolved because the failed step succeeded)"
    )
    owner: str | None = Field(description="The owner after this step")
    note: str | None
    at: datetime


class ExceptionDetail(ExceptionView):
    history: list[Transition] = Field(
        description="Its steps, oldest first (the latest 200 of an item that kept repeating)"
    )


class ExceptionPage(Page[ExceptionView]):
    pass


class SkippedMember(ApiModel):
    id: uuid.UUID
    code: str
    reason: str = Field(description="Why it was not re-driven: already in flight, not retryable now, backend down")


class GroupRetried(ApiModel):
    group_key: str
    retried: int = Field(description="Members re-driven by this call (open and retryable when it started)")
    skipped: list[SkippedMember] = Field(description="Members this call left alone, and why; the others went on")
    resolved: int = Field(description="Of the members this call re-drove, how many are resolved when it answers")


class ExceptionGroup(ApiModel):
    group_key: str
    codes: list[str]
    queue: Queue = Field(description="The queue of its member due first")
    queues: list[Queue]
    members: int = Field(description="Exceptions of the group that match the filter")
    open: int = Field(description="Of those, how many are not resolved (open or acknowledged)")
    retryable: int = Field(description="Of the unresolved, how many a group retry would re-drive")
    past_sla: int = Field(description="Unresolved members whose SLA due time has passed")
    oldest_created_at: datetime
    next_sla_due_at: datetime | None = Field(description="The earliest due time of an unresolved member")


class ExceptionGroupPage(Page[ExceptionGroup]):
    pass


class ExceptionKind(ApiModel):
    code: str
    queue: Queue
    sla: str = Field(description="ISO 8601 duration, e.g. PT4H or P2D", examples=["PT8H"])
    sla_seconds: int
    description: str
    updated_at: datetime


class ExceptionKindPage(Page[ExceptionKind]):
    pass
