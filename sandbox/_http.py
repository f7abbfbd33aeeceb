"""Request parsing helpers shared by the backends.

Every problem with a request body raises `ApiError`; each backend renders it in
its vendor's error shape, so no bad input ever reaches a 500 traceback.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = [
    "ApiError",
    "ErrorRenderer",
    "error_handlers",
    "opt_str",
    "parse_date",
    "parse_decimal",
    "plain_error",
    "read_object",
    "req_str",
]

INVALID_JSON = "INVALID_JSON"
VALIDATION_ERROR = "VALIDATION_ERROR"

# Plain decimals only: no exponents, NaN or infinities, which a money field never holds.
_DECIMAL = re.compile(r"-?\d+(\.\d+)?")

ErrorRenderer = Callable[[int, str, str], Response]


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def plain_error(status: int, code: str, detail: str) -> Response:
    """The error shape of the non-NetSuite backends: `{"code", "detail"}`."""
    return JSONResponse({"code": code, "detail": detail}, status_code=status)


def error_handlers(render: ErrorRenderer) -> dict[Any, Callable[..., Any]]:
    """Exception handlers rendering ApiError and routing errors (404/405) as JSON."""

    async def on_api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return render(exc.status, exc.code, exc.detail)

    async def on_http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = "NOT_FOUND" if exc.status_code == 404 else "HTTP_ERROR"
        return render(exc.status_code, code, str(exc.detail))

    return {ApiError: on_api_error, HTTPException: on_http_error}


async def read_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, INVALID_JSON, f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(422, VALIDATION_ERROR, "request body must be a JSON object")
    return body


def req_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(422, VALIDATION_ERROR, f"{key}: required non-empty string")
    return value


def opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(422, VALIDATION_ERROR, f"{key}: must be a string or null")
    return value


def parse_decimal(value: Any, loc: str) -> Decimal:
    """A decimal string ("1234.50"); JSON numbers are refused so float money never sneaks in."""
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
        raise ApiError(422, VALIDATION_ERROR, f'{loc}: must be a decimal string like "1234.50"')
    return Decimal(value)


def parse_date(value: Any, loc: str) -> date:
    if not isinstance(value, str):
        raise ApiError(422, VALIDATION_ERROR, f"{loc}: required date YYYY-MM-DD")
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(422, VALIDATION_ERROR, f"{loc}: not a valid date YYYY-MM-DD") from None
