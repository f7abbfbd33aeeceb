"""The sweeper cron: re-enqueue intents that have no live job."""

from __future__ import annotations

from jobs.context import JobContext
from jobs.retry import attempt


async def sweep_intents(ctx: JobContext, correlation_id: str | None = None) -> dict[str, int]:
    recovery = ctx["services"].recovery
    return await attempt(ctx, "sweep_intents", correlation_id, lambda final: recovery.sweep())
