"""The shared outbound HTTP client: timeouts, the correlation id on every call, vendor errors."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from app.errors import BackendUnavailable
from app.observability import correlation_id

__all__ = ["build_http_client", "path_segment", "raise_for_backend"]


async def _propagate_correlation(request: httpx.Request) -> None:
    cid = correlation_id()
    if cid and "x-correlation-id" not in request.headers:
        request.headers["X-Correlation-ID"] = cid


def build_http_client(timeout: float, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
        transport=transport,
        event_hooks={"request": [_propagate_correlation]},
        headers={"User-Agent": "psbridge/0.1"},
    )


def raise_for_backend(system: str, response: httpx.Response) -> None:
    """Turn a throttle or a server fault into a retryable ``BackendUnavailable``."""
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = response.headers.get("retry-after")
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
        raise BackendUnavailable(system, f"HTTP {response.status_code}: {response.text[:300]}", seconds)


def path_segment(value: str) -> str:
    """An id as one URL path segment: '/', '?' or '#' in an id must never reach another resource."""
    return quote(value, safe="")
