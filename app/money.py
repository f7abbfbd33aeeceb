"""Money: Decimal only, rounded half-up to the currency's ISO 4217 minor units."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import cache

import iso4217

__all__ = ["minor_units", "quantize", "to_str", "is_currency"]


@cache
def minor_units(currency: str) -> int:
    try:
        exponent = iso4217.Currency(currency.upper()).exponent
    except ValueError as exc:
        raise ValueError(f"unknown currency {currency!r}") from exc
    # Funds codes have no exponent; money here always has one.
    return exponent if exponent is not None else 2


def is_currency(code: str) -> bool:
    try:
        minor_units(code)
    except ValueError:
        return False
    return len(code) == 3 and code.isupper()


def quantize(amount: Decimal, currency: str) -> Decimal:
    """Round half-up (ties away from zero, negatives too) to the currency's minor units."""
    exponent = Decimal(1).scaleb(-minor_units(currency))
    return amount.quantize(exponent, rounding=ROUND_HALF_UP)


def to_str(amount: Decimal | None, currency: str | None = None) -> str | None:
    if amount is None:
        return None
    if currency is not None:
        amount = quantize(amount, currency)
    return format(amount, "f")
