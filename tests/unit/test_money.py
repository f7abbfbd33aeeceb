"""Money: Decimal, half-up (ties away from zero, negatives too), ISO 4217 minor units."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from pydantic import BaseModel, ValidationError

from app.money import decimal_places, fits_minor_units, minor_units, quantize, to_str
from app.types import CurrencyCode, Money


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("2.5", "JPY", "3"),
        ("-2.5", "JPY", "-3"),
        ("1.005", "USD", "1.01"),
        ("-1.005", "USD", "-1.01"),
        ("1.0004", "KWD", "1.000"),
        ("1.0005", "KWD", "1.001"),
        ("7.5", "USD", "7.50"),
    ],
)
def test_quantize_rounds_half_up_to_minor_units(amount: str, currency: str, expected: str) -> None:
    assert to_str(quantize(D(amount), currency)) == expected


def test_minor_units_follow_iso_4217() -> None:
    assert (minor_units("JPY"), minor_units("USD"), minor_units("KWD")) == (0, 2, 3)


class _Body(BaseModel):
    amount: Money
    currency: CurrencyCode


def test_money_must_be_a_decimal_string() -> None:
    assert _Body.model_validate_json('{"amount": "1234.50", "currency": "EUR"}').amount == D("1234.50")
    with pytest.raises(ValidationError, match="decimal strings"):
        _Body.model_validate_json('{"amount": 1234.5, "currency": "EUR"}')
    with pytest.raises(ValidationError, match="must be a decimal string"):
        _Body.model_validate_json('{"amount": "12,5", "currency": "EUR"}')
    with pytest.raises(ValidationError, match="must be a decimal string"):
        _Body.model_validate_json('{"amount": "NaN", "currency": "EUR"}')
    with pytest.raises(ValidationError, match="finite"):
        _Body.model_validate({"amount": D("NaN"), "currency": "EUR"})


@pytest.mark.parametrize(
    ("amount", "places"),
    [("100", 0), ("100.00", 0), ("0.000", 0), ("1E+5", 0), ("20000.005", 3), ("20000.0050", 3), ("-0.10", 1)],
)
def test_decimal_places_count_what_the_value_needs(amount: str, places: int) -> None:
    assert decimal_places(D(amount)) == places


@pytest.mark.parametrize(
    ("amount", "currency", "fits"),
    [
        ("20000.00", "USD", True),
        ("20000.0050", "USD", False),
        ("20000.005", "USD", False),
        ("100", "JPY", True),
        ("100.00", "JPY", True),
        ("100.5", "JPY", False),
        ("1.000", "KWD", True),
        ("1.0005", "KWD", False),
        ("1.00050", "KWD", False),
        ("-12.34", "EUR", True),
    ],
)
def test_given_amounts_must_fit_the_currency_minor_units(amount: str, currency: str, fits: bool) -> None:
    assert fits_minor_units(D(amount), currency) is fits


def test_fits_minor_units_is_exact_beyond_the_decimal_context_precision() -> None:
    # 29 significant digits: normalize() would round this to 28 and call it a whole number.
    assert not fits_minor_units(D("1.0000000000000000000000000001"), "JPY")
    with pytest.raises(ValueError):
        decimal_places(D("NaN"))


def test_currency_must_be_iso_4217() -> None:
    with pytest.raises(ValidationError):
        _Body.model_validate_json('{"amount": "1", "currency": "ABC"}')
