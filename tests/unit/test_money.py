"""Money: Decimal, half-up (ties away from zero, negatives too), ISO 4217 minor units."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from pydantic import BaseModel, ValidationError

from app.money import minor_units, quantize, to_str
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
    with pytest.raises(ValidationError, match="not a decimal"):
        _Body.model_validate_json('{"amount": "12,5", "currency": "EUR"}')
    with pytest.raises(ValidationError, match="finite"):
        _Body.model_validate_json('{"amount": "NaN", "currency": "EUR"}')


def test_currency_must_be_iso_4217() -> None:
    with pytest.raises(ValidationError):
        _Body.model_validate_json('{"amount": "1", "currency": "ABC"}')
