"""Correlation ids, structured JSON logs and Prometheus metrics.

The correlation id of the request (``X-Correlation-ID``, accepted or generated) lives in a
context variable: logs carry it, stores write it on every row, outbound clients and jobs
propagate it.

Every metric psbridge exports is declared here, so this module is their inventory. Counters and
histograms live in the process that observes them (the API's HTTP metrics, the workers' jobs, ERP
calls from either); the gauges of ``LiveMetrics`` are read from PostgreSQL and Redis at scrape time.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import Connection, Database

__all__ = [
    "CORRELATION_HEADER",
    "ERP_REQUESTS_TOTAL",
    "ERP_THROTTLE_WAIT_SECONDS",
    "JOBS_TOTAL",
    "CorrelationMiddleware",
    "LiveMetrics",
    "MetricsMiddleware",
    "MetricsServer",
    "configure_logging",
    "correlation_id",
    "get_logger",
    "metrics_endpoint",
    "new_correlation_id",
    "serve_metrics",
    "set_correlation_id",
]

CORRELATION_HEADER = "x-correlation-id"
_VALID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_correlation: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def correlation_id() -> str | None:
    return _correlation.get()


def set_correlation_id(value: str | None) -> None:
    _correlation.set(value)
    structlog.contextvars.bind_contextvars(correlation_id=value)


def configure_logging(level: int = logging.INFO) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]


_log = get_logger("psbridge.metrics")


class CorrelationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(CORRELATION_HEADER.encode(), b"").decode("latin-1")
        value = incoming if _VALID.match(incoming) else new_correlation_id()
        structlog.contextvars.clear_contextvars()
        set_correlation_id(value)

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-correlation-id"]
                headers.append((b"x-correlation-id", value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_header)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUESTS = Counter("psbridge_http_requests_total", "HTTP requests", ["method", "path", "status"])
LATENCY = Histogram("psbridge_http_request_seconds", "HTTP request latency", ["method", "path"])


def _route_template(app: ASGIApp, scope: Scope) -> str:
    # Group by route template, never raw paths: ids would explode label cardinality.
    router = getattr(app, "router", None)
    for route in getattr(router, "routes", []):
        match, child = route.matches(scope)
        if match == Match.FULL:
            path = getattr(route, "path", scope["path"])
            inner = getattr(route, "routes", None)
            if inner:
                child_scope = {**scope, **child}
                for sub in inner:
                    sub_match, _ = sub.matches(child_scope)
                    if sub_match == Match.FULL:
                        return str(path) + str(getattr(sub, "path", ""))
            return str(path)
    return "unmatched"


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, root: ASGIApp | None = None) -> None:
        self.app = app
        self.root = root

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            path = _route_template(scope.get("app") or self.app, scope)
            # Label values are bounded: any method string a client invents would be a new series.
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            REQUESTS.labels(method, path, str(status)).inc()
            LATENCY.labels(method, path).observe(time.perf_counter() - started)


JOBS_TOTAL = Counter("psbridge_jobs_total", "Job tries by how they ended: success, retry or failed", ["job", "outcome"])
ERP_REQUESTS_TOTAL = Counter(
    "psbridge_erp_requests_total", "ERP calls by outcome: ok, rejected, unavailable or error", ["outcome"]
)
ERP_THROTTLE_WAIT_SECONDS = Histogram(
    "psbridge_erp_throttle_wait_seconds",
    "Time an ERP call waited for a slot of the shared throttle",
    # Waits run from one Redis round trip to many seconds when a burst meets the rate limit.
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
for _outcome in ("ok", "rejected", "unavailable", "error"):
    ERP_REQUESTS_TOTAL.labels(_outcome)  # every outcome exported from the start, so rate() sees the first one


OpenExceptions = Mapping[tuple[str, str], int]  # (queue, code) -> exceptions not resolved
PastSla = Mapping[str, int]  # queue -> exceptions not resolved whose SLA due time has passed


@dataclass(frozen=True)
class LiveMetrics:
    """The gauges the API reads afresh at every scrape; the composition root says where each comes from.

    Nothing is kept between scrapes, so a combination that went back to zero can never show its old
    value, and apps (or tests) in one process never see each other's numbers.
    """

    queue_name: str
    queue_depth: Callable[[], Awaitable[int]]
    db: Database
    open_exceptions: Callable[[Connection], Awaitable[OpenExceptions]]
    past_sla: Callable[[Connection], Awaitable[PastSla]]
    circuits: Callable[[], Awaitable[Mapping[str, str]]] | None = None

    async def render(self) -> bytes:
        families = [
            await self._queue_depth(), await self._exceptions_open(), await self._exceptions_past_sla(),
            await self._circuits(),
        ]  # fmt: skip
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Fixed([family for family in families if family is not None]))
        return generate_latest(registry)

    async def _circuits(self) -> Metric | None:
        if self.circuits is None:
            return None
        family = GaugeMetricFamily(
            "psbridge_circuit_state",
            "Each backend's circuit breaker: 1 for the state it is in (closed, open, half_open), 0 for the others",
            labels=["backend", "state"],
        )
        try:
            states = await self.circuits()
        except Exception:  # as above: Redis down, the rest is still served
            _log.warning("metrics: circuit states unavailable", exc_info=True)
            return None
        for backend, state in sorted(states.items()):
            for candidate in ("closed", "open", "half_open"):
                family.add_metric([backend, candidate], 1 if state == candidate else 0)
        return family

    async def _queue_depth(self) -> Metric | None:
        family = GaugeMetricFamily(
            "psbridge_queue_depth",
            "Jobs in the arq queue: waiting, deferred to a later try, or running",
            labels=["queue"],
        )
        try:
            family.add_metric([self.queue_name], await self.queue_depth())
        except Exception:  # the HTTP metrics must still be served while Redis is down
            _log.warning("metrics: queue depth unavailable", exc_info=True)
            return None
        return family

    async def _exceptions_open(self) -> Metric | None:
        family = GaugeMetricFamily(
            "psbridge_exceptions_open", "Exceptions not resolved, by queue and code", labels=["queue", "code"]
        )
        try:
            async with self.db.connection() as conn:
                counts = await self.open_exceptions(conn)
        except Exception:  # as above: a scrape reports what it can while PostgreSQL is down
            _log.warning("metrics: open exceptions unavailable", exc_info=True)
            return None
        for (queue, code), count in sorted(counts.items()):
            family.add_metric([queue, code], count)
        return family

    async def _exceptions_past_sla(self) -> Metric | None:
        family = GaugeMetricFamily(
            "psbridge_exceptions_past_sla",
            "Exceptions not resolved (open or acknowledged) whose SLA due time has passed, by queue",
            labels=["queue"],
        )
        try:
            async with self.db.connection() as conn:
                counts = await self.past_sla(conn)
        except Exception:  # as above: a scrape reports what it can while PostgreSQL is down
            _log.warning("metrics: exceptions past SLA unavailable", exc_info=True)
            return None
        for queue, count in sorted(counts.items()):
            family.add_metric([queue], count)
        return family


class _Fixed(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


async def metrics_endpoint(request: Request) -> Response:
    live: LiveMetrics = request.app.state.live_metrics
    # Two expositions back to back are one valid exposition: their metric names are disjoint.
    return Response(generate_latest() + await live.render(), media_type=CONTENT_TYPE_LATEST)


@dataclass(frozen=True)
class MetricsServer:
    """A process's own /metrics (the workers'), served from a thread by prometheus_client."""

    host: str
    port: int
    _server: WSGIServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(host: str, port: int) -> MetricsServer:
    """Serve this process's registry on ``host:port``; port 0 takes a free port (see ``.port``)."""
    server, thread = start_http_server(port, addr=host)
    return MetricsServer(host, server.server_port, server, thread)
