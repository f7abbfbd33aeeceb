"""The sweeper cron: re-enqueue intents that have no live job."""

from __future__ import annotations

from typing import Any

from jobs.retry import bind_correlation


async def sweep_intents(ctx: dict[str, Any], correlation_id: str | None = None) -> dict[str, int]:
    bind_correlation(ctx, correlation_id)
    counts: dict[str, int] = await ctx["services"].recovery.sweep()
    return counts
