"""What every job shares: its correlation id, retries with backoff and jitter that honour Retry-After,
and ``psbridge_jobs_total``, which counts how each try ended."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

from arq import Retry

from app.errors import BackendUnavailable
from app.observability import JOBS_TOTAL, set_correlation_id
from jobs.context import JobContext

T = TypeVar("T")


# arq's own limit is max_tries + this: a try that only waited out an open circuit is not counted.
CIRCUIT_WAITS = 10_000


def _waits_key(ctx: JobContext) -> str:
    return f"psbridge:circuit-waits:{ctx['job_id']}"


async def _circuit_waits(ctx: JobContext) -> int:
    redis = ctx.get("redis")
    return int(await redis.get(_waits_key(ctx)) or 0) if redis is not None else 0


def is_final_attempt(ctx: JobContext, circuit_waits: int = 0) -> bool:
    """The last try: its tries are used (waits for an open circuit not counted) and its time budget
    since it was queued has passed, so a flaky backend never exhausts a job, an outage does."""
    if ctx["job_try"] - circuit_waits < ctx["max_tries"]:
        return False
    budget, queued = ctx.get("time_budget", 0.0), ctx.get("enqueue_time")
    if not budget or queued is None:
        return True
    return (datetime.now(UTC) - queued).total_seconds() >= budget


def retry_later(ctx: JobContext, exc: BackendUnavailable) -> Retry:
    attempt = ctx["job_try"]
    backoff = min(300.0, 0.5 * 2 ** (attempt - 1))
    delay = max(exc.backend_retry_after or 0.0, random.uniform(backoff / 2, backoff))  # noqa: S311 - jitter
    return Retry(defer=delay)


def bind_correlation(ctx: JobContext, correlation_id: str | None) -> None:
    """Jobs continue the request's correlation id; the sweeper's jobs fall back to the job id."""
    set_correlation_id(correlation_id or ctx["job_id"])


async def attempt(ctx: JobContext, job: str, correlation_id: str | None, call: Callable[[bool], Awaitable[T]]) -> T:
    """Run one try of the job ``job``; an unreachable backend means "again later" until the last try.

    ``call`` receives whether this is the final try, so the service can leave an exception behind.
    A backend whose circuit is open was not even called: the job waits out the cool-down, and that
    try does not count towards its limit.
    """
    bind_correlation(ctx, correlation_id)
    waits = await _circuit_waits(ctx)
    final = is_final_attempt(ctx, waits)
    with _outcome_counted(job, final):
        try:
            result = await call(final)
        except BackendUnavailable as exc:
            if exc.circuit_open:
                redis = ctx.get("redis")
                if redis is not None:
                    await redis.incr(_waits_key(ctx))
                    await redis.expire(_waits_key(ctx), 86_400)
                raise Retry(defer=max(exc.retry_after, 0.5)) from exc
            if final:
                await _forget_waits(ctx, waits)
                raise
            raise retry_later(ctx, exc) from exc
        except Exception:
            await _forget_waits(ctx, waits)
            raise
    await _forget_waits(ctx, waits)
    return result


async def _forget_waits(ctx: JobContext, waits: int) -> None:
    redis = ctx.get("redis")
    if waits and redis is not None:
        await redis.delete(_waits_key(ctx))


@contextmanager
def _outcome_counted(job: str, final: bool) -> Iterator[None]:
    try:
        yield
    except Retry:
        JOBS_TOTAL.labels(job, "retry").inc()
        raise
    except asyncio.CancelledError:
        # A timed-out try is cancelled and arq runs it again, unless it was the last one.
        JOBS_TOTAL.labels(job, "failed" if final else "retry").inc()
        raise
    except Exception:
        JOBS_TOTAL.labels(job, "failed").inc()
        raise
    JOBS_TOTAL.labels(job, "success").inc()
