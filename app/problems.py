"""RFC 9457 problem+json: the one place errors become HTTP responses."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from app.db import dumps
from app.errors import DomainError, FieldError
from app.observability import correlation_id, get_logger

__all__ = ["exception_handlers", "problem", "problem_response"]

_log = get_logger(__name__)
PROBLEM_TYPE = "https://psbridge.dev/problems/"


def problem(
    status: int,
    detail: str,
    code: str | None = None,
    title: str | None = None,
    errors: list[FieldError] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + (code or str(status)).lower().replace("_", "-"),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if code:
        body["code"] = code
    if errors:
        # Every item names its machine code; one the raiser left out is the problem's own.
        body["errors"] = [{"code": code, **e.as_dict()} if code and not e.code else e.as_dict() for e in errors]
    if correlation_id():
        body["correlation_id"] = correlation_id()
    # Extension members never replace the standard ones (a stray extra "status" would lie about the response).
    body.update({k: v for k, v in extra.items() if k not in body})
    return body


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=body["status"], media_type="application/problem+json", headers=headers)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    headers = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, int(retry_after)))
    return problem_response(problem(exc.status, exc.detail, exc.code, exc.title, exc.errors, **exc.extra), headers)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}
    detail = exc.detail if exc.detail != HTTPStatus(exc.status_code).phrase else None
    if detail is None:
        detail = {404: f"no route for {request.url.path}", 405: f"{request.method} is not allowed here"}.get(
            exc.status_code, HTTPStatus(exc.status_code).phrase
        )
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(problem(exc.status_code, str(detail), codes.get(exc.status_code)), headers)


def _allowed_methods(request: Request) -> list[str]:
    # Each route serves one method, so Starlette's Allow names only the first route of the path: list them all.
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


async def _unhandled(request: Request, exc: Exception) -> Response:
    # Log the stack; never show it (nor SQL) to the caller.
    _log.error("unhandled_error", path=request.url.path, exc_info=exc)
    # This handler runs outside every middleware (Starlette's ServerErrorMiddleware), so the
    # correlation middleware cannot add its header here: add it, the caller needs it most now.
    cid = correlation_id()
    return problem_response(
        problem(500, "an internal error occurred; quote the correlation id to support", "INTERNAL_ERROR"),
        {"X-Correlation-ID": cid} if cid else None,
    )


exception_handlers: dict[Any, Any] = {
    DomainError: _domain_error,
    HTTPException: _http_exception,
    Exception: _unhandled,
}
