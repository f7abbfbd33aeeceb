"""Correlation ids, structured JSON logs and Prometheus metrics.

The correlation id of the request (``X-Correlation-ID``, accepted or generated) lives in a
context variable: logs carry it, stores write it on every row, outbound clients and jobs
propagate it.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CORRELATION_HEADER",
    "CorrelationMiddleware",
    "MetricsMiddleware",
    "configure_logging",
    "correlation_id",
    "get_logger",
    "metrics_endpoint",
    "new_correlation_id",
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


async def metrics_endpoint(request: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
