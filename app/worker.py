"""arq WorkerSettings: the job functions, JSON serialisation, and services built in on_startup."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import httpx
from arq import cron
from arq.worker import Worker, func

from app.bootstrap import build_services
from app.observability import configure_logging
from app.settings import Settings
from app.tasks import job_deserializer, job_serializer, redis_settings
from jobs.billing import notify_billed, post_invoice, quote_invoice
from jobs.contracts import propagate_contract
from jobs.recovery import sweep_intents

__all__ = ["build_worker", "worker_settings"]


def worker_settings(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> dict[str, Any]:
    async def on_startup(ctx: dict[str, Any]) -> None:
        configure_logging()
        stack = AsyncExitStack()
        ctx["stack"] = stack
        ctx["services"] = await stack.enter_async_context(build_services(settings, transport))
        ctx["max_tries"] = settings.job_max_tries  # arq tells a job its try number, not the limit

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await ctx["stack"].aclose()

    tries = settings.job_max_tries
    return {
        "functions": [
            func(propagate_contract, max_tries=tries),  # type: ignore[arg-type]
            func(quote_invoice, max_tries=tries),  # type: ignore[arg-type]
            func(post_invoice, max_tries=tries),  # type: ignore[arg-type]
            func(notify_billed, max_tries=tries),  # type: ignore[arg-type]
        ],
        "cron_jobs": [
            cron(
                sweep_intents,
                name=f"sweep_intents:{settings.queue_name}",  # cron ids must not collide across queues
                second=set(range(0, 60, 15)),
                unique=True,
                run_at_startup=True,
            ),  # type: ignore[arg-type]
        ],
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "redis_settings": redis_settings(settings.required_redis_url),
        "queue_name": settings.queue_name,
        "job_serializer": job_serializer,
        "job_deserializer": job_deserializer,
        "max_tries": tries,
        "job_timeout": 120,
        # No results kept: a job id then blocks only while its job is queued or running, so a retry
        # or the sweeper can enqueue the same intent again as soon as the last attempt ended.
        "keep_result": 0,
        # arq polls every 0.5 s by default: invoices then post in bursts half a second apart.
        "poll_delay": 0.05,
        "handle_signals": True,
    }


def build_worker(settings: Settings, transport: httpx.AsyncBaseTransport | None = None, **overrides: Any) -> Worker:
    return Worker(**{**worker_settings(settings, transport), **overrides})
