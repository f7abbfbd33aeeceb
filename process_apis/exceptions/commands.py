"""What operators send to work exceptions and to tune their kinds."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from process_apis.exceptions.rules import SLA_PATTERN, SLA_ZERO_PATTERN, Sla, parse_sla
from process_apis.exceptions.views import Queue

__all__ = ["ExceptionAction", "ExceptionAssignment", "ExceptionKindIn", "GroupRetryIn", "Note", "Owner"]

_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # tabs and newlines are fine in a note
_NAME = r"^[^\x00-\x1f\x7f]+$"  # an owner is a name: no control character at all

Note = Annotated[str, Field(max_length=4000, pattern=_TEXT, description="Why: kept in the history")]
Owner = Annotated[str, Field(min_length=1, max_length=200, pattern=_NAME, description="A person or a team")]


class ExceptionAction(BaseModel):
    """Acknowledge, resolve or retry; both fields optional (an empty body is a plain "do it")."""

    model_config = ConfigDict(extra="forbid")

    note: Note | None = None
    owner: Owner | None = Field(default=None, description="The new owner; absent or null keeps the current one")


class ExceptionAssignment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: Owner | None = Field(description="Who owns it from now on; null: nobody")
    note: Note | None = None


class GroupRetryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Note | None = None


class ExceptionKindIn(BaseModel):
    """A kind's queue and SLA. A new SLA applies to exceptions opened afterwards; open ones keep their due time."""

    model_config = ConfigDict(extra="forbid")

    queue: Queue
    sla: str = Field(
        pattern=SLA_PATTERN,
        description="ISO 8601 duration in days, hours, minutes and seconds (PT8H, P2D, P1DT12H30M), longer than "
        "zero: up to 999 days and 9999 hours, minutes and seconds below 60; years, months and weeks are refused",
        examples=["PT8H"],
        json_schema_extra={"not": {"pattern": SLA_ZERO_PATTERN}},
    )
    description: str | None = Field(
        default=None, min_length=1, max_length=500, pattern=_TEXT, description="Absent: unchanged"
    )

    @field_validator("sla")
    @classmethod
    def _sla_is_a_duration(cls, value: str) -> str:
        parse_sla(value)  # ValueError -> 422 naming body.sla
        return value

    @property
    def parsed_sla(self) -> Sla:
        return parse_sla(self.sla)
