"""The PSA (projects, plans, billing feedback) as process APIs see it."""

from __future__ import annotations

from typing import Protocol

from app.canonical import BilledItem, ProjectPlan


class PsaPort(Protocol):
    """Every call raises ``BackendUnavailable`` when the PSA is unreachable, throttles or fails (retried;
    ``ambiguous`` for a write that may have landed: both calls are idempotent, so a retry is safe) or
    ``BackendRejected`` when it refuses the request (a 4xx: not retried, a work item instead)."""

    async def provision_project(self, plan: ProjectPlan) -> str:
        """Create or update the project for this contract (idempotent by contract id); returns its id."""
        ...

    async def mark_billed(self, items: list[BilledItem]) -> None: ...
