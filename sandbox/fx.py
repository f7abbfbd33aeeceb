"""FX: daily rates, `1 base = rate quote`, set and read by (date, base, quote)."""

from __future__ import annotations

import re
from decimal import Decimal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from sandbox._http import (
    VALIDATION_ERROR,
    ApiError,
    error_handlers,
    parse_date,
    parse_decimal,
    plain_error,
    read_object,
)
from sandbox.middleware import wrap_backend
from sandbox.state import SandboxState

__all__ = ["create_app"]

_CURRENCY = re.compile(r"[A-Z]{3}")


def create_app(state: SandboxState) -> ASGIApp:
    fx = _Fx(state)
    path = "/rates/{on}/{base}/{quote}"
    routes = [Route(path, fx.put_rate, methods=["PUT"]), Route(path, fx.get_rate, methods=["GET"])]
    app = Starlette(routes=routes, exception_handlers=error_handlers(plain_error))
    return wrap_backend(app, "fx", state, plain_error)


class _Fx:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def put_rate(self, request: Request) -> Response:
        key = _key(request)
        rate = parse_decimal((await read_object(request)).get("rate"), "rate")
        if rate <= 0:
            raise ApiError(422, VALIDATION_ERROR, "rate: must be greater than 0")
        created = key not in self.state.fx_rates
        self.state.fx_rates[key] = rate
        return JSONResponse(_view(key, rate), status_code=201 if created else 200)

    async def get_rate(self, request: Request) -> Response:
        key = _key(request)
        _on, base, quote = key
        # No inverse or cross rates are derived: a pair nobody set is missing, which psbridge must handle.
        rate = Decimal(1) if base == quote else self.state.fx_rates.get(key)
        if rate is None:
            raise ApiError(404, "FX_RATE_MISSING", f"no {base}/{quote} rate for {_on}")
        return JSONResponse(_view(key, rate))


def _key(request: Request) -> tuple[str, str, str]:
    on = parse_date(request.path_params["on"], "date").isoformat()
    base, quote = request.path_params["base"].upper(), request.path_params["quote"].upper()
    for loc, code in (("base", base), ("quote", quote)):
        if not _CURRENCY.fullmatch(code):
            raise ApiError(422, VALIDATION_ERROR, f"{loc}: must be an ISO 4217 code like EUR")
    return on, base, quote


def _view(key: tuple[str, str, str], rate: Decimal) -> dict[str, str]:
    on, base, quote = key
    return {"date": on, "base": base, "quote": quote, "rate": str(rate)}
