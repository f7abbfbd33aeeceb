"""What every job shares: its correlation id, and retries with backoff and jitter that honour Retry-After."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from arq import Retry

from app.errors import BackendUnavailable
from app.observability import set_correlation_id

T = TypeVar("T")


def is_final_attempt(ctx: dict[str, Any]) -> bool:
    return int(ctx["job_try"]) >= int(ctx["max_tries"])


def retry_later(ctx: dict[str, Any], exc: BackendUnavailable) -> Retry:
    attempt = int(ctx.get("job_try", 1))
    backoff = min(300.0, 0.5 * 2 ** (attempt - 1))
    delay = max(exc.retry_after or 0.0, random.uniform(backoff / 2, backoff))  # noqa: S311 - jitter
    return Retry(defer=delay)


def bind_correlation(ctx: dict[str, Any], correlation_id: str | None) -> None:
    """Jobs continue the request's correlation id; the sweeper's jobs fall back to the job id."""
    set_correlation_id(correlation_id or str(ctx.get("job_id")))


async def attempt(ctx: dict[str, Any], correlation_id: str | None, call: Callable[[bool], Awaitable[T]]) -> T:
    """Run one try of a job step; an unreachable backend means "again later" until the last try.

    ``call`` receives whether this is the final try, so the service can leave an exception behind.
    """
    bind_correlation(ctx, correlation_id)
    final = is_final_attempt(ctx)
    try:
        return await call(final)
    except BackendUnavailable as exc:
        if final:
            raise
        raise retry_later(ctx, exc) from exc
