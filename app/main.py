"""The web application: ``create_app(settings)`` wires middleware, routes and the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import httpx
import redis.asyncio
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import Field
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from app.access import Right
from app.auth import AuthMiddleware
from app.bootstrap import build_services
from app.content_type import JsonBodyMiddleware
from app.docs_pages import DOCS_CSP, STATIC_DIR, swagger_html
from app.http import Operation, endpoint, json_response
from app.idempotency import IdempotencyMiddleware
from app.index_page import index
from app.limits import BodySizeLimitMiddleware, ClientRateLimitMiddleware, Governor, rate_limit_storage
from app.observability import (
    CorrelationMiddleware,
    LiveMetrics,
    MetricsMiddleware,
    configure_logging,
    metrics_endpoint,
)
from app.openapi import build_openapi
from app.problems import exception_handlers
from app.responses import ApiModel
from app.settings import Settings
from experience_apis import dashboard
from experience_apis import routes as experience_routes
from experience_apis.graphiql_page import STATIC_DIR as EXPERIENCE_STATIC_DIR
from experience_apis.schema import build_schema
from process_apis.billing import routes as billing_routes
from process_apis.contracts import routes as contract_routes
from process_apis.exceptions import routes as exception_routes
from process_apis.exceptions.metrics import count_open_exceptions, count_past_sla
from process_apis.master_data import routes as master_data_routes
from process_apis.milestones import routes as milestone_routes
from process_apis.reconciliation import routes as reconciliation_routes
from process_apis.work import routes as work_routes
from system_apis import routes as system_routes
from system_apis.crm import routes as crm_routes

__all__ = ["create_app"]

# "/" is matched exactly (AuthMiddleware reads other entries ending in "/" as prefixes).
PUBLIC_PATHS = (
    "/",
    "/healthz",
    "/readyz",
    "/docs",
    "/openapi.json",
    "/graphql/schema.json",  # what GraphiQL shows; off in production, like introspection
    "/favicon.ico",  # every browser page asks for it: no icon, rather than a 401 in the console
    "/static/",
    "/dashboard",
)
DESCRIPTION = (
    "psbridge turns signed contracts, hours, expenses and milestones into invoices posted to the ERP "
    "exactly once. Amounts are decimal strings; errors are RFC 9457 problem+json."
)


class Health(ApiModel):
    status: Literal["ok"]


class Readiness(ApiModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, bool] = Field(description="Each dependency: database, redis")
    circuits: dict[str, Literal["closed", "open", "half_open"]] = Field(
        default_factory=dict,
        description="Each backend's circuit breaker (erp, tax): open means calls wait out a cool-down; "
        "the API stays ready",
    )


async def healthz(request: Request) -> Response:
    return json_response(Health(status="ok"))


async def readyz(request: Request) -> Response:
    services = request.app.state.services
    checks = await services.ready()
    ok = all(checks.values())
    try:
        circuits = await services.circuit_states() if checks.get("redis") else {}
    except Exception:  # readiness reports; it must not raise
        circuits = {}
    readiness = Readiness(status="ready" if ok else "unavailable", checks=checks, circuits=circuits)
    return json_response(readiness, 200 if ok else 503)


_OPERATIONS = ("operations",)
HEALTH = Operation("getHealth", "The process is up (no dependency checked)", None, response=Health, tags=_OPERATIONS)
READINESS = Operation(
    "getReadiness",
    "PostgreSQL and Redis answer",
    None,
    response=Readiness,
    other_statuses={503: "A dependency does not answer"},
    tags=_OPERATIONS,
)
METRICS = Operation(
    "getMetrics",
    "Prometheus metrics of this API process",
    Right.READ_METRICS,
    tags=_OPERATIONS,
    media_type=CONTENT_TYPE_LATEST,
)


async def favicon(request: Request) -> Response:
    return Response(status_code=204)


async def openapi(request: Request) -> Response:
    return JSONResponse(request.app.state.openapi)


async def docs(request: Request) -> Response:
    return HTMLResponse(swagger_html("/openapi.json", "/static"), headers={"Content-Security-Policy": DOCS_CSP})


def api_routes() -> list[BaseRoute]:
    return [
        *contract_routes.routes,
        *milestone_routes.routes,
        *work_routes.routes,
        *billing_routes.routes,
        *reconciliation_routes.routes,
        *master_data_routes.routes,
        *exception_routes.routes,
        *system_routes.routes,
        *crm_routes.routes,
    ]


def create_app(settings: Settings | None = None, transport: httpx.AsyncBaseTransport | None = None) -> Starlette:
    settings = settings or Settings()
    configure_logging()

    # The rate limiter's own Redis pool (limits' asyncio storage), disconnected when the app stops.
    rate_limit_pool = redis.asyncio.ConnectionPool.from_url(settings.required_redis_url)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            async with build_services(settings, transport) as services:
                app.state.services = services
                # /metrics reads these afresh at every scrape (app.observability.LiveMetrics).
                app.state.live_metrics = LiveMetrics(
                    queue_name=settings.queue_name,
                    queue_depth=services.queue.depth,
                    db=services.db,
                    open_exceptions=count_open_exceptions,
                    past_sla=count_past_sla,
                    circuits=services.circuit_states,
                )
                yield
        finally:
            await rate_limit_pool.disconnect()

    routes: list[BaseRoute] = [
        Route("/", index),
        endpoint("/healthz", "GET", healthz, HEALTH),
        endpoint("/readyz", "GET", readyz, READINESS),
        endpoint("/metrics", "GET", metrics_endpoint, METRICS),
        Route("/openapi.json", openapi),
        Route("/favicon.ico", favicon),
        Route("/docs", docs),
        *api_routes(),
        *experience_routes.routes,
        *dashboard.routes,
        # The narrower mount first: /static would otherwise swallow /static/experience.
        Mount("/static/experience", StaticFiles(directory=EXPERIENCE_STATIC_DIR), name="experience-static"),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers=exception_handlers,
        middleware=[
            Middleware(CorrelationMiddleware),
            Middleware(MetricsMiddleware),
            Middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes),
            Middleware(AuthMiddleware, public_paths=PUBLIC_PATHS),
            Middleware(
                ClientRateLimitMiddleware,
                limit=settings.default_rate_limit,
                storage=rate_limit_storage(settings.required_redis_url, rate_limit_pool),
            ),
            # 415 after auth and the rate limit (an anonymous caller gets its 401 first, a throttled
            # one its 429), before Idempotency-Key reads the body and claims a row for it.
            Middleware(JsonBodyMiddleware),
            Middleware(IdempotencyMiddleware),
        ],
    )
    app.state.erp_governor = Governor(
        settings.erp_system_rate_limit,
        rate_limit_storage(settings.required_redis_url, rate_limit_pool),
        f"{settings.queue_name}:system:erp",
    )
    app.state.graphql_schema = build_schema(
        settings.graphql_max_depth,
        settings.graphql_max_aliases,
        settings.graphql_max_tokens,
        introspection=settings.env != "production",
    )
    app.state.openapi = build_openapi(routes, "psbridge", "1.0.0", DESCRIPTION)
    return app
