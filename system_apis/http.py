"""The one outbound HTTP path of every system API: timeouts, the correlation id on every call, and
what each outcome means, decided once for every backend.

- The request never left (connect error, connect/pool timeout): retryable.
- It may have been applied (read/write timeout, a reset after sending, a 5xx): retryable and
  ambiguous, so a writer looks the record up before writing again.
- Throttled (429) or a 404 the caller did not expect (a wrong route is fixed by a deployment, not by
  the data): retryable, after the backend's ``Retry-After`` (seconds or an HTTP date) if it gave one.
- Any other 4xx: rejected, not retryable: the data or the configuration must change first.

A status the caller expects (404 for "absent", 422 for a tax rejection) comes back as the response.
Errors name the outcome and the vendor's code, never the vendor's body: that is logged, because a
``detail`` can reach our own API's callers.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import quote

import httpx

from app.errors import BackendRejected, BackendUnavailable
from app.observability import correlation_id, get_logger

__all__ = ["Outbound", "build_http_client", "classify", "parse_retry_after", "path_segment", "vendor_error"]

_log = get_logger("psbridge.outbound")
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

# (vendor code, vendor detail) of a refusal, read from the body by each system's own parser.
ErrorParser = Callable[[httpx.Response], tuple[str, str]]


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


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delay-seconds or an HTTP date (RFC 9110); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def vendor_error(response: httpx.Response) -> tuple[str, str]:
    """The common shape (``{"code", "detail"}``, or ``{"error": ...}``); else the status alone."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = body.get("code") or body.get("error")
        if isinstance(code, str) and code:
            return code, str(body.get("detail") or body.get("message") or "")
    return f"HTTP_{response.status_code}", ""


class Outbound:
    """One backend's calls through one client; ``send`` returns a response or raises the outcome."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        system: str,
        base_url: str,
        parse_error: ErrorParser = vendor_error,
        throttle_codes: Collection[str] = (),
    ) -> None:
        self.http, self.system, self.base = http, system, base_url.rstrip("/")
        self.parse_error = parse_error
        self.throttle_codes = frozenset(throttle_codes)  # refusals that mean "too busy" (NetSuite's 400s)

    async def send(
        self, method: str, path: str, body: object = None, *, expect: Collection[int] = ()
    ) -> httpx.Response:
        try:
            response = await self.http.request(method, self.base + path, json=body)
        except _NEVER_SENT as exc:
            raise BackendUnavailable(self.system, type(exc).__name__) from exc
        except httpx.HTTPError as exc:
            raise BackendUnavailable(self.system, type(exc).__name__, ambiguous=method != "GET") from exc
        failure = classify(self.system, method, response, expect, self.parse_error, self.throttle_codes)
        if failure is None:
            return response
        _log.warning(
            "backend refused", system=self.system, method=method, path=path, status=response.status_code,
            outcome=failure.detail, body=response.text[:500],
        )  # fmt: skip
        raise failure


def classify(
    system: str,
    method: str,
    response: httpx.Response,
    expect: Collection[int] = (),
    parse_error: ErrorParser = vendor_error,
    throttle_codes: Collection[str] = (),
) -> BackendUnavailable | BackendRejected | None:
    """What an answer means (None: a response for the caller). Pure: the rules of this module's docstring."""
    status = response.status_code
    if status < 400 or status in expect:
        return None
    code, detail = parse_error(response)
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    outcome = f"HTTP {status}" + ("" if code.startswith("HTTP_") else f" {code}")
    if status >= 500:
        return BackendUnavailable(system, outcome, retry_after, ambiguous=method != "GET")
    if status in (404, 408, 429) or code in throttle_codes:
        return BackendUnavailable(system, outcome, retry_after)
    return BackendRejected(system, code, detail)


def path_segment(value: str) -> str:
    """An id as one URL path segment: '/', '?' or '#' in an id must never reach another resource."""
    return quote(value, safe="")
