"""Validated scalar types for request models: money as decimal strings, currencies, codes."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, WithJsonSchema

from app.money import is_currency

__all__ = ["Code", "CurrencyCode", "ExternalId", "Money", "NonNegativeMoney", "PositiveMoney"]


def _decimal_string(value: Any) -> Decimal:
    # A JSON number for money is refused: binary floats lose cents before we ever see them.
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str):
        raise ValueError('amounts must be decimal strings such as "1234.50", not JSON numbers')
    try:
        parsed = Decimal(value.strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None
    if not parsed.is_finite():
        raise ValueError("amounts must be finite")
    if -parsed.as_tuple().exponent > 12:  # type: ignore[operator]
        raise ValueError("at most 12 decimal places")
    if abs(parsed) >= Decimal("1e15"):
        raise ValueError("amount is out of range")
    return parsed


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than zero")
    return value


def _currency(value: str) -> str:
    if not is_currency(value):
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    return value


def _money_schema(pattern: str, description: str) -> WithJsonSchema:
    # Documented as what is accepted: a decimal string, never a JSON number.
    return WithJsonSchema({"type": "string", "pattern": pattern, "description": description, "examples": ["1234.50"]})


Money = Annotated[
    Decimal, BeforeValidator(_decimal_string), _money_schema(r"^-?[0-9]+(\.[0-9]+)?$", "A decimal string")
]
NonNegativeMoney = Annotated[
    Decimal,
    BeforeValidator(_decimal_string),
    AfterValidator(_non_negative),
    _money_schema(r"^[0-9]+(\.[0-9]+)?$", "A decimal string, zero or more"),
]
PositiveMoney = Annotated[
    Decimal,
    BeforeValidator(_decimal_string),
    AfterValidator(_positive),
    _money_schema(r"^[0-9]+(\.[0-9]+)?$", "A decimal string greater than zero"),
]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(_currency)]
# Another system's id: any printable text (they travel in outbound URLs, so no control characters).
ExternalId = Annotated[
    str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=r"^[^\x00-\x1f\x7f]+$")
]
Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
ShortText = Annotated[str, Field(max_length=2000)]
