"""Money: Decimal only, rounded half-up to the currency's ISO 4217 minor units."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import cache

import iso4217

__all__ = ["currency_codes", "decimal_places", "fits_minor_units", "is_currency", "minor_units", "quantize", "to_str"]


@cache
def minor_units(currency: str) -> int:
    try:
        exponent = iso4217.Currency(currency.upper()).exponent
    except ValueError as exc:
        raise ValueError(f"unknown currency {currency!r}") from exc
    # Funds codes have no exponent; money here always has one.
    return exponent if exponent is not None else 2


def currency_codes() -> list[str]:
    """Every ISO 4217 code psbridge accepts, sorted."""
    return sorted(c.code for c in iso4217.Currency)


def is_currency(code: str) -> bool:
    try:
        minor_units(code)
    except ValueError:
        return False
    return len(code) == 3 and code.isupper()


def decimal_places(amount: Decimal) -> int:
    """The decimals the value needs, trailing zeros aside: ``20000.0050`` needs 3, ``100.00`` needs 0.

    Read from the digits, not computed: ``normalize()`` would round to the context precision first.
    """
    _, digits, exponent = amount.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"{amount} is not a finite amount")
    if not any(digits):
        return 0
    places = -exponent
    for digit in reversed(digits):
        if places <= 0 or digit != 0:
            break
        places -= 1
    return max(places, 0)


def fits_minor_units(amount: Decimal, currency: str) -> bool:
    """True when the amount is exact in the currency ("100.00" JPY is, "100.5" JPY is not).

    psbridge rounds what it computes, never what it is given (docs/billing.md, "Money").
    """
    return decimal_places(amount) <= minor_units(currency)


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
