"""Tax engine: jurisdictions with rates, and quotes applying the treatment rules of docs/billing.md.

Same country → the jurisdiction's rate ("standard"); two different EU member
states → reverse charge at 0 % with a customer VAT id, a validation error
without; any other pair of different countries → exempt export at 0 %.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from sandbox._http import (
    VALIDATION_ERROR,
    ApiError,
    error_handlers,
    opt_str,
    parse_decimal,
    plain_error,
    read_object,
    req_str,
)
from sandbox.middleware import wrap_backend
from sandbox.state import SandboxState

__all__ = ["EU_MEMBER_STATES", "create_app", "line_tax", "minor_units"]

EU_MEMBER_STATES = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split())
REVERSE_CHARGE_NOTE = (
    "Reverse charge: VAT to be accounted for by the recipient (Art. 196 Council Directive 2006/112/EC)"
)
# ISO 4217 minor units that differ from 2; the sandbox keeps its own table (it imports nothing of ours).
_MINOR_UNITS = {
    **dict.fromkeys(("JPY", "KRW", "CLP", "ISK", "VND", "PYG", "UGX", "XAF", "XOF"), 0),
    **dict.fromkeys(("KWD", "BHD", "OMR", "JOD", "TND", "LYD", "IQD"), 3),
}
_JURISDICTION = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,3})?")
_COUNTRY = re.compile(r"[A-Z]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")
ZERO = Decimal(0)


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency, 2)


def create_app(state: SandboxState) -> ASGIApp:
    tax = _Tax(state)
    routes = [
        Route("/jurisdictions", tax.list_jurisdictions, methods=["GET"]),
        Route("/jurisdictions/{code}", tax.get_jurisdiction, methods=["GET"]),
        Route("/rates/{code}", tax.put_rate, methods=["PUT"]),
        Route("/quotes", tax.quote, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers=error_handlers(plain_error))
    return wrap_backend(app, "tax", state, plain_error)


class _Tax:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def list_jurisdictions(self, _request: Request) -> Response:
        return JSONResponse({"items": [_view(code, rate) for code, rate in self.state.tax_rates.items()]})

    async def get_jurisdiction(self, request: Request) -> Response:
        code = request.path_params["code"].upper()
        return JSONResponse(_view(code, self._rate(code)))

    async def put_rate(self, request: Request) -> Response:
        code = request.path_params["code"].upper()
        if not _JURISDICTION.fullmatch(code):
            raise ApiError(422, VALIDATION_ERROR, "jurisdiction: a country code, optionally -REGION (US-NY)")
        rate = parse_decimal((await read_object(request)).get("rate"), "rate")
        if not ZERO <= rate < 1:
            raise ApiError(422, VALIDATION_ERROR, "rate: must be in [0, 1)")
        created = code not in self.state.tax_rates
        self.state.tax_rates[code] = rate
        return JSONResponse(_view(code, rate), status_code=201 if created else 200)

    async def quote(self, request: Request) -> Response:
        body = await read_object(request)
        seller = _code(body, "seller_country", _COUNTRY)
        currency = _code(body, "currency", _CURRENCY)
        lines = _lines(body.get("lines"))
        tax_id = (opt_str(body, "customer_tax_id") or "").strip()
        jurisdiction = req_str(body, "jurisdiction").upper()
        treatment, rate, note = _treatment(seller, _country(jurisdiction), self._rate(jurisdiction), tax_id)
        return JSONResponse(
            {
                "jurisdiction": jurisdiction,
                "currency": currency,
                "treatment": treatment,
                "rate": str(rate),
                "note": note,
                "lines": [
                    {
                        "key": key,
                        "net": str(net),
                        "rate": str(rate),
                        "tax": str(line_tax(net, rate, currency)),
                    }
                    for key, net in lines
                ],
            }
        )

    def _rate(self, code: str) -> Decimal:
        rate = self.state.tax_rates.get(code)
        if rate is None:
            raise ApiError(404, "UNKNOWN_TAX_JURISDICTION", f"unknown tax jurisdiction {code}")
        return rate


def line_tax(net: Decimal, rate: Decimal, currency: str) -> Decimal:
    """net × rate, half-up (away from zero, also for credits) to the currency's minor units."""
    tax = (net * rate).quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)
    # A credit line at 0 % would print "-0.00"; a zero has no sign on an invoice.
    return tax.copy_abs() if tax == 0 else tax


def _treatment(seller: str, customer: str, rate: Decimal, tax_id: str) -> tuple[str, Decimal, str | None]:
    if seller == customer:
        return "standard", rate, None
    if seller in EU_MEMBER_STATES and customer in EU_MEMBER_STATES:
        if not tax_id:
            raise ApiError(422, "TAX_VALIDATION_FAILED", "customer VAT id required for intra-EU supply")
        return "reverse_charge", ZERO, REVERSE_CHARGE_NOTE
    return "exempt_export", ZERO, None


def _country(jurisdiction: str) -> str:
    return jurisdiction.split("-", 1)[0]


def _view(code: str, rate: Decimal) -> dict[str, str]:
    return {"code": code, "country": _country(code), "rate": str(rate)}


def _code(body: dict[str, Any], key: str, pattern: re.Pattern[str]) -> str:
    value = req_str(body, key).upper()
    if not pattern.fullmatch(value):
        raise ApiError(422, VALIDATION_ERROR, f"{key}: invalid code {value!r}")
    return value


def _lines(lines: Any) -> list[tuple[str, Decimal]]:
    if not isinstance(lines, list):
        raise ApiError(422, VALIDATION_ERROR, "lines: required list")
    parsed: list[tuple[str, Decimal]] = []
    for index, line in enumerate(lines):
        if not isinstance(line, dict) or not isinstance(line.get("key"), str):
            raise ApiError(422, VALIDATION_ERROR, f"lines[{index}]: object with a string key required")
        parsed.append((line["key"], parse_decimal(line.get("net"), f"lines[{index}].net")))
    return parsed
