"""Pure milestone decisions: the version in force on a date and the acceptance checks, in order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from app.errors import Conflict, ValidationFailed


@dataclass(frozen=True)
class VersionSpan:
    version: int
    effective_date: date


def acceptance_date(accepted_at: datetime) -> date:
    """The acceptance date is the UTC date of ``accepted_at``."""
    return accepted_at.astimezone(UTC).date()


def version_in_force(versions: list[VersionSpan], on: date) -> int:
    """Version 1 covers every date before version 2's effective date; version n from its own."""
    in_force = min(v.version for v in versions)
    for v in sorted(versions, key=lambda v: v.version):
        if v.effective_date <= on:
            in_force = v.version
    return in_force


def check_acceptance(
    *,
    key: str,
    on: date,
    contract_status: str,
    start_date: date,
    in_force_keys: set[str],
    depends_on: list[str],
    accepted_on: dict[str, date],
) -> None:
    """Raise the first failing rule: blocked, before the term, not in force, prerequisites."""
    if contract_status == "blocked":
        raise Conflict("the contract is blocked; resolve its exceptions first", "CONTRACT_BLOCKED")
    if on < start_date:
        raise ValidationFailed(
            f"acceptance on {on} is before the contract starts ({start_date})", code="OUTSIDE_CONTRACT_TERM"
        )
    if key not in in_force_keys:
        raise Conflict(f"milestone {key} is not in the contract version in force on {on}", "MILESTONE_NOT_IN_FORCE")
    missing = sorted(k for k in depends_on if k not in accepted_on or accepted_on[k] > on)
    if missing:
        raise Conflict(
            f"milestone {key} needs {', '.join(missing)} accepted on or before {on}",
            "PREREQUISITES_NOT_MET",
            missing=missing,
        )
