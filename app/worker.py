"""arq WorkerSettings: the job functions, JSON serialisation, the services built in on_startup, and
the worker's own /metrics when ``PSBRIDGE_WORKER_METRICS_PORT`` is set (one port per worker process)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, cast

import httpx
from arq import cron
from arq.typing import WorkerCoroutine
from arq.worker import Worker, func

from app.bootstrap import build_services
from app.observability import configure_logging, get_logger, serve_metrics
from app.settings import Settings
from app.tasks import job_deserializer, job_serializer, redis_settings
from jobs.billing import notify_billed, post_invoice, quote_invoice
from jobs.context import JobServices
from jobs.contracts import propagate_contract
from jobs.reconciliation import reconcile
from jobs.recovery import sweep_intents
from jobs.retry import CIRCUIT_WAITS

__all__ = ["build_worker", "worker_settings"]


def worker_settings(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> dict[str, Any]:
    async def on_startup(ctx: dict[str, Any]) -> None:
        configure_logging()
        stack = AsyncExitStack()
        ctx["stack"] = stack
        services = await stack.enter_async_context(build_services(settings, transport))
        # Jobs see jobs.context.JobContext: the process services they call, nothing else of the root.
        ctx["services"] = JobServices(
            billing=services.billing,
            contracts=services.contracts,
            recovery=services.recovery,
            reconciliation=services.reconciliation,
        )
        ctx["max_tries"] = settings.job_max_tries
        ctx["time_budget"] = settings.job_time_budget_seconds
        if settings.worker_metrics_port is not None:
            server = serve_metrics(settings.worker_metrics_host, settings.worker_metrics_port)
            stack.callback(server.close)
            # Port 0 lets the OS choose: the log line is how an operator (or a test) learns which.
            get_logger("psbridge.worker").info("worker metrics listening", url=server.url, port=server.port)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await ctx["stack"].aclose()

    tries = settings.job_max_tries
    return {
        "functions": [
            func(_arq(propagate_contract), max_tries=tries + CIRCUIT_WAITS),
            func(_arq(quote_invoice), max_tries=tries + CIRCUIT_WAITS),
            func(_arq(post_invoice), max_tries=tries + CIRCUIT_WAITS),
            func(_arq(notify_billed), max_tries=tries + CIRCUIT_WAITS),
        ],
        "cron_jobs": [
            cron(
                _arq(sweep_intents),
                name=f"sweep_intents:{settings.queue_name}",  # cron ids must not collide across queues
                second=set(range(0, 60, 15)),
                unique=True,
                run_at_startup=True,
            ),
            # Every night: drift between psbridge, the ERP, the PSA and the CRM is found the same day.
            cron(
                _arq(reconcile),
                name=f"reconcile:{settings.queue_name}",
                hour={settings.reconciliation_hour},
                minute={0},
                unique=True,
            ),
        ],
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "redis_settings": redis_settings(settings.required_redis_url),
        "queue_name": settings.queue_name,
        "job_serializer": job_serializer,
        "job_deserializer": job_deserializer,
        "max_tries": tries + CIRCUIT_WAITS,
        "job_timeout": 120,
        # No results kept: a job id then blocks only while its job is queued or running, so a retry
        # or the sweeper can enqueue the same intent again as soon as the last attempt ended.
        "keep_result": 0,
        # arq polls every 0.5 s by default: invoices then post in bursts half a second apart.
        "poll_delay": 0.05,
        "handle_signals": True,
    }


def _arq(job: Callable[..., Awaitable[Any]]) -> WorkerCoroutine:
    # arq types ctx as a plain dict; jobs read it as jobs.context.JobContext, which on_startup fills in.
    return cast(WorkerCoroutine, job)


def build_worker(settings: Settings, transport: httpx.AsyncBaseTransport | None = None, **overrides: Any) -> Worker:
    return Worker(**{**worker_settings(settings, transport), **overrides})
