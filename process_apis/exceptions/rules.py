"""Pure decisions about work items: which status changes an action may make, and what an SLA may be."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from app.errors import Conflict

__all__ = [
    "SLA_PATTERN",
    "SLA_ZERO_PATTERN",
    "Sla",
    "Step",
    "assignment_step",
    "check_transition",
    "format_sla",
    "parse_sla",
    "status_step",
]

Status = Literal["open", "acknowledged", "resolved"]
Action = Literal["opened", "repeated", "acknowledged", "resolved", "retried", "assigned"]

# Resolved is final: if the problem comes back, a new exception opens (one open row per code and subject).
_ALLOWED = {
    ("open", "acknowledged"),
    ("acknowledged", "acknowledged"),
    ("open", "resolved"),
    ("acknowledged", "resolved"),
    ("resolved", "resolved"),
}


def check_transition(current: str, wanted: str) -> bool:
    """True when the action changes the status, False when it is a repeat; Conflict when it is not allowed."""
    if (current, wanted) not in _ALLOWED:
        raise Conflict(
            f"a {current} exception cannot be {wanted}; if the problem recurs, a new exception opens",
            "EXCEPTION_RESOLVED" if current == "resolved" else "INVALID_TRANSITION",
        )
    return current != wanted


@dataclass(frozen=True)
class Step:
    """One line of an exception's history: what happened and the status it leaves."""

    action: Action
    to_status: Status


def status_step(
    current: str,
    wanted: Literal["acknowledged", "resolved"],
    owner: str | None,
    new_owner: str | None,
    note: str | None,
) -> Step | None:
    """What acknowledging or resolving does; None when it changes nothing (a repeat with nothing new).

    Acknowledging an acknowledged item again is how its owner changes ('assigned') or a note is
    added; resolving a resolved one again changes nothing, whatever it carries.
    """
    if check_transition(current, wanted):
        return Step(wanted, wanted)
    if wanted == "resolved":
        return None
    if new_owner is not None and new_owner != owner:
        return Step("assigned", "acknowledged")
    return Step("acknowledged", "acknowledged") if note is not None else None


def assignment_step(current: str, owner: str | None, new_owner: str | None, note: str | None) -> Step | None:
    """Giving an item to someone (or to nobody: None) keeps its status; a resolved one stays closed."""
    if current == "resolved":
        raise Conflict(
            "a resolved exception has no owner to change; if the problem recurs, a new one opens", "EXCEPTION_RESOLVED"
        )
    if new_owner == owner and note is None:
        return None
    return Step("assigned", "open" if current == "open" else "acknowledged")


# An SLA is an ISO 8601 duration in days, hours, minutes and seconds. Years and months have no fixed
# length and are refused. The bounds are in the pattern itself, so the OpenAPI schema states exactly
# what is accepted: up to 999 days, 9999 hours, minutes and seconds below 60. Minutes and seconds do
# not overflow and days stay days (PostgreSQL keeps an interval's days and time apart), so the text
# psbridge answers is always one it accepts back.
_TIME = r"T(?:[0-9]{1,4}H(?:[0-5]?[0-9]M)?(?:[0-5]?[0-9]S)?|[0-5]?[0-9]M(?:[0-5]?[0-9]S)?|[0-5]?[0-9]S)"
SLA_PATTERN = rf"^P(?:[0-9]{{1,3}}D(?:{_TIME})?|{_TIME})$"
SLA_ZERO_PATTERN = r"^P(?:0+D)?(?:T(?:0+H)?(?:0+M)?(?:0+S)?)?$"
# Once a text matches SLA_PATTERN, this reads its parts.
_SLA = re.compile(
    r"^P(?:(?P<d>[0-9]{1,3})D)?(?:T(?:(?P<h>[0-9]{1,4})H)?(?:(?P<m>[0-5]?[0-9])M)?(?:(?P<s>[0-5]?[0-9])S)?)?$"
)


@dataclass(frozen=True)
class Sla:
    """How long a team has, as the parts an interval keeps."""

    days: int
    hours: int
    minutes: int
    seconds: int

    @property
    def total_seconds(self) -> int:
        return ((self.days * 24 + self.hours) * 60 + self.minutes) * 60 + self.seconds


def parse_sla(text: str) -> Sla:
    """The ``Sla`` an ISO 8601 duration such as ``PT8H`` or ``P2DT12H`` names; ValueError if none or zero."""
    match = _SLA.fullmatch(text)
    if match is None or not re.fullmatch(SLA_PATTERN, text):
        raise ValueError("must be an ISO 8601 duration in days, hours, minutes and seconds, e.g. PT8H or P2D")
    sla = Sla(*(int(match.group(part) or 0) for part in "dhms"))
    if sla.total_seconds <= 0:
        raise ValueError("must be longer than zero")
    return sla


def format_sla(sla: Sla) -> str:
    """The ISO 8601 text of an SLA, zero parts left out: ``P2D``, ``PT4H``, ``P1DT4H30M``."""
    date = f"{sla.days}D" if sla.days else ""
    time = "".join(
        f"{value}{unit}" for value, unit in ((sla.hours, "H"), (sla.minutes, "M"), (sla.seconds, "S")) if value
    )
    if not date and not time:
        return "PT0S"
    return f"P{date}" + (f"T{time}" if time else "")
