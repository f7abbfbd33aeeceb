"""Validated scalar types for request bodies and query parameters.

Money is a decimal string, business dates and times are bounded ISO/RFC 3339 strings, and
each type's JSON schema states exactly what it accepts (the OpenAPI document is built from it).
Every string is checked against its pattern before it is parsed: ``Decimal`` and
``fromisoformat`` accept far more than the contract does ("1_000", "1E+999999999", "١٢٣",
"20260105"), and some of it is expensive to even construct.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, StringConstraints, WithJsonSchema

from app.money import currency_codes, is_currency

__all__ = [
    "BUSINESS_DATE_MAX",
    "BUSINESS_DATE_MIN",
    "BusinessDate",
    "BusinessDateTime",
    "Code",
    "CurrencyCode",
    "ExternalId",
    "Money",
    "NonNegativeMoney",
    "PositiveMoney",
    "ShortText",
]

# --- money -------------------------------------------------------------------------------------

MONEY_MAX_LENGTH = 64
MONEY_MAX_INTEGER_DIGITS = 15  # |amount| < 1e15
MONEY_MAX_DECIMALS = 12
# [0-9], not \d: \d also matches Arabic-Indic and other Unicode digits, which Decimal() accepts.
_MONEY_SHAPE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_JSON_NUMBER_HINT = 'amounts must be decimal strings such as "1234.50", not JSON numbers'
Sign = Literal["any", "non_negative", "positive"]


def _check_decimal(value: Decimal) -> Decimal:
    # Python callers hand over Decimals: same bounds, read from the tuple (no string of 1e9 digits).
    if not value.is_finite():
        raise ValueError("amounts must be finite")
    if -value.as_tuple().exponent > MONEY_MAX_DECIMALS:  # type: ignore[operator]
        raise ValueError(f"at most {MONEY_MAX_DECIMALS} decimal places")
    if value and value.adjusted() >= MONEY_MAX_INTEGER_DIGITS:
        raise ValueError("amount is out of range (its absolute value must be below 1e15)")
    return value


def _parse_money(value: Any, sign: Sign) -> Decimal:
    if isinstance(value, Decimal):
        parsed = _check_decimal(value)
    elif not isinstance(value, str):
        raise ValueError(_JSON_NUMBER_HINT)  # binary floats lose cents before we ever see them
    elif len(value) > MONEY_MAX_LENGTH:
        raise ValueError(f"an amount has at most {MONEY_MAX_LENGTH} characters")
    elif not _MONEY_SHAPE.fullmatch(value):
        raise ValueError(
            "must be a decimal string of ASCII digits with an optional leading minus and fractional part, "
            'e.g. "1234.50" (no spaces, exponents, digit separators or "+")'
        )
    else:
        integer, _, fraction = value.removeprefix("-").partition(".")
        if len(integer.lstrip("0")) > MONEY_MAX_INTEGER_DIGITS:
            raise ValueError("amount is out of range (its absolute value must be below 1e15)")
        if len(fraction) > MONEY_MAX_DECIMALS:
            raise ValueError(f"at most {MONEY_MAX_DECIMALS} decimal places")
        if sign != "any" and value.startswith("-"):
            raise ValueError("must not be negative")  # "-0" too: the schema's pattern has no minus
        parsed = Decimal(value)
    if sign != "any" and parsed < 0:
        raise ValueError("must not be negative")
    if sign == "positive" and parsed == 0:
        raise ValueError("must be greater than zero")
    return parsed


def _money_validator(sign: Sign) -> BeforeValidator:
    def parse(value: Any) -> Decimal:
        return _parse_money(value, sign)

    return BeforeValidator(parse)


def _money_schema(sign: Sign, description: str) -> WithJsonSchema:
    minus = "-?" if sign == "any" else ""
    # Leading zeros are allowed, so the digit limit applies after them (maxLength bounds the rest).
    pattern = rf"^{minus}0*[0-9]{{1,{MONEY_MAX_INTEGER_DIGITS}}}(\.[0-9]{{1,{MONEY_MAX_DECIMALS}}})?$"
    schema: dict[str, Any] = {
        "type": "string",
        "pattern": pattern,
        "maxLength": MONEY_MAX_LENGTH,
        "description": f"{description}: a decimal string of ASCII digits with an optional fractional part of at "
        f"most {MONEY_MAX_DECIMALS} digits, below 1e15 in absolute value. A JSON number is refused.",
        "examples": ["1234.50"],
    }
    if sign == "positive":
        schema["not"] = {"pattern": r"^0+(\.0+)?$"}
    return WithJsonSchema(schema)


# Out as it came in: str(Decimal) writes "0E-9" or "1E-7", which the pattern (rightly) refuses, so a
# stored payload read back through the same model would fail.
_FIXED_POINT = PlainSerializer(lambda value: format(value, "f"), return_type=str, when_used="json")

Money = Annotated[Decimal, _money_validator("any"), _money_schema("any", "An amount, negative allowed"), _FIXED_POINT]
NonNegativeMoney = Annotated[
    Decimal,
    _money_validator("non_negative"),
    _money_schema("non_negative", "An amount, zero or more (no minus)"),
    _FIXED_POINT,
]
PositiveMoney = Annotated[
    Decimal,
    _money_validator("positive"),
    _money_schema("positive", "An amount greater than zero (no minus)"),
    _FIXED_POINT,
]

# --- business dates and times ------------------------------------------------------------------

BUSINESS_DATE_MIN = date(1970, 1, 1)
BUSINESS_DATE_MAX = date(2199, 12, 31)
_EARLIEST = datetime.combine(BUSINESS_DATE_MIN, time.min, UTC)
_LATEST = datetime.combine(BUSINESS_DATE_MAX, time.max, UTC)
_BOUNDS = f"within {BUSINESS_DATE_MIN} and {BUSINESS_DATE_MAX}"
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_CLOCK = r"[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
_OFFSET = r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
_DATE_ONLY = re.compile(_DATE)
_LOOKS_LIKE_DATE_TIME = re.compile(_DATE + _CLOCK + _OFFSET + "?")
_LOOKS_LIKE_LOCAL_TIME = re.compile(_DATE + _CLOCK)
# RFC 3339 (seconds required; up to 9 fractional digits, beyond microseconds truncated).
_RFC3339 = re.compile(_DATE + r"[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?" + _OFFSET)
# The same rules as JSON Schema patterns, years included, for OpenAPI readers and fuzzers.
_YEAR_MONTH_DAY = r"(19[7-9][0-9]|2[01][0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_DATE_PATTERN = rf"^{_YEAR_MONTH_DAY}$"
_DATE_TIME_PATTERN = (
    rf"^{_YEAR_MONTH_DAY}[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{{1,9}})?"
    r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_DATE_HINT = "expected a date in the form YYYY-MM-DD"
_DATE_TIME_HINT = "expected an RFC 3339 date-time with a UTC offset, e.g. 2026-01-02T10:00:00Z"


def _in_bounds(day: date) -> None:
    if not BUSINESS_DATE_MIN <= day <= BUSINESS_DATE_MAX:
        raise ValueError(f"must fall {_BOUNDS}")


def _parse_business_date(value: Any) -> date:
    if isinstance(value, datetime):
        raise ValueError(f"{_DATE_HINT}, not a date-time")
    if isinstance(value, date):
        _in_bounds(value)
        return value
    if not isinstance(value, str):
        raise ValueError(_DATE_HINT)
    if not _DATE_ONLY.fullmatch(value):
        if _LOOKS_LIKE_DATE_TIME.fullmatch(value):
            raise ValueError(f"{_DATE_HINT}, not a date-time")
        raise ValueError(_DATE_HINT)
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a calendar date") from None
    _in_bounds(parsed)
    return parsed


def _check_instant(value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise ValueError("a time needs a UTC offset (Z or ±hh:mm)")
    # Bounded as written and in UTC: the written date is what people read, UTC what is stored.
    _in_bounds(value.date())
    if not _EARLIEST <= value <= _LATEST:
        raise ValueError(f"must fall {_BOUNDS} in UTC")
    return value


def _parse_business_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return _check_instant(value)
    if not isinstance(value, str):
        raise ValueError(_DATE_TIME_HINT)
    if not _RFC3339.fullmatch(value):
        if _LOOKS_LIKE_LOCAL_TIME.fullmatch(value):
            raise ValueError(f"a time needs a UTC offset (Z or ±hh:mm): {_DATE_TIME_HINT}")
        if _DATE_ONLY.fullmatch(value):
            raise ValueError(f"{_DATE_TIME_HINT}, not a date")
        raise ValueError(_DATE_TIME_HINT)
    try:
        parsed = datetime.fromisoformat(value.upper())  # RFC 3339 allows "t" and "z"; fromisoformat does not
    except ValueError:
        raise ValueError("is not a valid date-time") from None
    return _check_instant(parsed)


BusinessDate = Annotated[
    date,
    BeforeValidator(_parse_business_date),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "pattern": _DATE_PATTERN,
            "description": f"A business date YYYY-MM-DD {_BOUNDS}.",
            "examples": ["2026-01-05"],
        }
    ),
]
BusinessDateTime = Annotated[
    datetime,
    BeforeValidator(_parse_business_datetime),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": _DATE_TIME_PATTERN,
            "description": f"An RFC 3339 date-time with a UTC offset (Z or ±hh:mm), {_BOUNDS} both as written "
            "and in UTC. Fractional seconds beyond microseconds are truncated.",
            "examples": ["2026-01-02T10:00:00Z"],
        }
    ),
]

# --- codes and text ----------------------------------------------------------------------------


def _currency(value: str) -> str:
    if not is_currency(value):
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    return value


# The schema lists the codes: a pattern like [A-Z]{3} would promise "AAA" works.
CurrencyCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    AfterValidator(_currency),
    WithJsonSchema({"type": "string", "enum": currency_codes(), "description": "An ISO 4217 currency code"}),
]
# Another system's id: any printable text (they travel in outbound URLs, so no control characters).
ExternalId = Annotated[
    str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=r"^[^\x00-\x1f\x7f]+$")
]
Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
ShortText = Annotated[str, Field(max_length=2000)]
