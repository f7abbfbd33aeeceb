"""The request scalar types: what each accepts, what it refuses, and that its JSON schema says so."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from app.types import BusinessDate, BusinessDateTime, Money, NonNegativeMoney, PositiveMoney

MONEY = TypeAdapter(Money)
NON_NEGATIVE = TypeAdapter(NonNegativeMoney)
POSITIVE = TypeAdapter(PositiveMoney)
DATE = TypeAdapter(BusinessDate)
DATE_TIME = TypeAdapter(BusinessDateTime)


def _accepts(adapter: TypeAdapter[Any], value: Any) -> bool:
    try:
        adapter.validate_json(json.dumps(value))
    except ValidationError:
        return False
    return True


def _message(adapter: TypeAdapter[Any], value: Any) -> str:
    with pytest.raises(ValidationError) as raised:
        adapter.validate_json(json.dumps(value))
    [error] = raised.value.errors()
    return str(error["msg"])


def _schema_allows(adapter: TypeAdapter[Any], value: str) -> bool:
    """What an OpenAPI reader concludes from the schema (pattern, maxLength, not) alone."""
    schema = adapter.json_schema()
    if len(value) > schema.get("maxLength", len(value)) or not re.search(schema["pattern"], value):
        return False
    return not ("not" in schema and re.search(schema["not"]["pattern"], value))


# --- money -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "1_000",  # Decimal() takes digit separators
        "1E+2",
        "1e3",
        " 12 ",
        "12\n",
        "\u0661\u0662\u0663",  # Arabic-Indic digits, which Decimal() reads as 123
        "\uff11\uff12",  # full-width digits
        "1E+999999999",  # overflowed the range check (a 500)
        "-1E-999999999",
        "+5",
        "\u22125",  # a Unicode minus
        ".5",
        "5.",
        "",
        "-",
        "1.2.3",
        "0x10",
        "NaN",
        "Infinity",
        "-inf",
        "1,000.00",
        "1 000",
    ],
)
def test_money_refuses_anything_but_plain_ascii_decimals(value: str) -> None:
    for adapter in (MONEY, NON_NEGATIVE, POSITIVE):
        assert "must be a decimal string" in _message(adapter, value)


@pytest.mark.parametrize("value", [1234.5, 1234, 0, True, None, ["1"], {"amount": "1"}])
def test_money_as_anything_but_a_string_is_refused_with_the_hint(value: Any) -> None:
    assert "decimal strings" in _message(MONEY, value)


def test_money_bounds() -> None:
    assert MONEY.validate_json('"999999999999999.999999999999"') == D("999999999999999.999999999999")
    assert "out of range" in _message(MONEY, "1000000000000000")
    assert "out of range" in _message(MONEY, "-1000000000000000.00")
    assert MONEY.validate_json('"0000000000000000000001.50"') == D("1.50")  # leading zeros are not magnitude
    assert "12 decimal places" in _message(MONEY, "1.0000000000001")
    assert "12 decimal places" in _message(MONEY, "1.0000000000000")  # judged as written
    assert "at most 64 characters" in _message(MONEY, "1" * 100_000)
    assert "at most 64 characters" in _message(MONEY, "0" * 64 + "1")


def test_decimals_from_python_callers_get_the_same_bounds() -> None:
    assert MONEY.validate_python(D("12.50")) == D("12.50")
    for value, message in (
        (D("1E+999999999"), "out of range"),
        (D("1E+15"), "out of range"),
        (D("1E-13"), "12 decimal places"),
        (D("sNaN"), "finite"),
        (D("-Infinity"), "finite"),
    ):
        with pytest.raises(ValidationError, match=message):
            MONEY.validate_python(value)
    assert MONEY.validate_python(D("0E+20")) == 0


@pytest.mark.parametrize(
    ("value", "money", "non_negative", "positive"),
    [
        ("12.50", True, True, True),
        ("0", True, True, False),
        ("0.00", True, True, False),
        ("000.000", True, True, False),
        ("0.01", True, True, True),
        ("-0", True, False, False),
        ("-0.00", True, False, False),
        ("-12.50", True, False, False),
    ],
)
def test_each_money_type_has_its_own_sign_rule(value: str, money: bool, non_negative: bool, positive: bool) -> None:
    assert (_accepts(MONEY, value), _accepts(NON_NEGATIVE, value), _accepts(POSITIVE, value)) == (
        money,
        non_negative,
        positive,
    )


# No deadline (no timing assertions here) and no example database left in the tree.
QUIET = settings(deadline=None, database=None)

_MONEY_TEXT = st.text(alphabet="0123456789.-+eE_ \u0661", max_size=20) | st.from_regex(
    r"-?[0-9]{1,20}(\.[0-9]{1,14})?", fullmatch=True
)


@QUIET
@given(_MONEY_TEXT)
def test_money_schemas_state_exactly_what_is_accepted(value: str) -> None:
    for adapter in (MONEY, NON_NEGATIVE, POSITIVE):
        assert _schema_allows(adapter, value) == _accepts(adapter, value), (adapter, value)


@QUIET
@given(st.from_regex(r"-?[0-9]{1,15}(\.[0-9]{1,12})?", fullmatch=True))
def test_money_is_written_back_as_it_was_read(value: str) -> None:
    # A stored payload is read back through the same model: "0.000000000" must not come back as "0E-9".
    amount = MONEY.validate_json(json.dumps(value))
    written = MONEY.dump_json(amount)
    assert MONEY.validate_json(written) == amount and b"E" not in written


def test_money_schemas_are_strings_never_numbers() -> None:
    for adapter in (MONEY, NON_NEGATIVE, POSITIVE):
        schema = adapter.json_schema()
        assert schema["type"] == "string" and schema["maxLength"] == 64
        assert "\\d" not in schema["pattern"]


# --- business dates ----------------------------------------------------------------------------


def test_a_business_date_is_yyyy_mm_dd_within_the_bounds() -> None:
    assert DATE.validate_json('"2026-01-05"') == date(2026, 1, 5)
    assert DATE.validate_json('"1970-01-01"') == date(1970, 1, 1)
    assert DATE.validate_json('"2199-12-31"') == date(2199, 12, 31)
    for value in ("1969-12-31", "2200-01-01", "9999-12-31", "0001-01-01"):
        assert "within 1970-01-01 and 2199-12-31" in _message(DATE, value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-01-05T00:00:00", "not a date-time"),  # pydantic's lax mode took this as a date
        ("2026-01-05T00:00:00Z", "not a date-time"),
        ("2026-01-05 00:00", "not a date-time"),
        ("2026-02-30", "not a calendar date"),
        ("2026-13-01", "not a calendar date"),
        ("20260105", "YYYY-MM-DD"),
        ("2026-W02-1", "YYYY-MM-DD"),
        ("2026-1-5", "YYYY-MM-DD"),
        ("05/01/2026", "YYYY-MM-DD"),
        (" 2026-01-05", "YYYY-MM-DD"),
        ("2026-01-05\n", "YYYY-MM-DD"),
        ("\u0662\u0660\u0662\u0666-01-05", "YYYY-MM-DD"),
        ("", "YYYY-MM-DD"),
        (20260105, "YYYY-MM-DD"),
        (1767571200, "YYYY-MM-DD"),  # a Unix time, which lax mode reads as a date
        (None, "YYYY-MM-DD"),
    ],
)
def test_a_business_date_refuses_other_shapes(value: Any, message: str) -> None:
    assert message in _message(DATE, value)


def test_python_callers_pass_dates_not_datetimes() -> None:
    assert DATE.validate_python(date(2026, 1, 5)) == date(2026, 1, 5)
    with pytest.raises(ValidationError, match="not a date-time"):
        DATE.validate_python(datetime(2026, 1, 5, tzinfo=UTC))
    with pytest.raises(ValidationError, match="within"):
        DATE.validate_python(date(1, 1, 1))


def test_a_business_time_needs_an_offset_and_the_bounds() -> None:
    assert DATE_TIME.validate_json('"2026-01-02T10:00:00Z"') == datetime(2026, 1, 2, 10, tzinfo=UTC)
    plus_two = DATE_TIME.validate_json('"2026-01-02T12:00:00+02:00"')
    assert plus_two == datetime(2026, 1, 2, 10, tzinfo=UTC) and plus_two.utcoffset() == timedelta(hours=2)
    assert DATE_TIME.validate_json('"2026-01-02t10:00:00z"') == datetime(2026, 1, 2, 10, tzinfo=UTC)  # RFC 3339
    # .NET's round-trip format has 7 fractional digits; beyond microseconds they are dropped
    dotnet = DATE_TIME.validate_json('"2026-01-02T10:00:00.1234567-05:00"')
    assert dotnet.microsecond == 123456
    assert DATE_TIME.validate_json('"1970-01-01T00:00:00Z"') == datetime(1970, 1, 1, tzinfo=UTC)
    assert DATE_TIME.validate_json('"2199-12-31T23:59:59.999999Z"').year == 2199


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-01-02T10:00:00", "needs a UTC offset"),
        ("2026-01-02T10:00", "needs a UTC offset"),
        ("2026-01-02 10:00:00", "needs a UTC offset"),
        ("2026-01-02", "not a date"),
        ("9999-12-31T23:59:59Z", "within 1970-01-01 and 2199-12-31"),  # was invoiced with that date
        ("9999-12-31T23:59:59-14:00", "within"),
        ("0001-01-01T00:00:00+14:00", "within"),  # overflowed when converted to UTC
        ("1969-12-31T23:59:59Z", "within"),
        ("2200-01-01T00:00:00Z", "within"),
        ("1970-01-01T00:30:00+01:00", "in UTC"),  # 1969 in UTC
        ("2199-12-31T23:30:00-01:00", "in UTC"),  # 2200 in UTC
        ("2026-01-02T24:00:00Z", "not a valid date-time"),
        ("2026-01-02T23:59:60Z", "not a valid date-time"),  # no leap seconds
        ("2026-02-30T10:00:00Z", "not a valid date-time"),
        ("2026-01-02T10:00:00+24:00", "not a valid date-time"),
        ("2026-01-02T10:00:00+0200", "RFC 3339"),
        ("20260102T100000Z", "RFC 3339"),
        ("2026-01-02T10:00:00.1234567890Z", "RFC 3339"),
        ("2026-01-02T10:00:00 Z", "RFC 3339"),
        ("1767348000", "RFC 3339"),  # lax mode reads numeric strings as Unix times
        (1767348000, "RFC 3339"),
        ("yesterday", "RFC 3339"),
        ("\u0662\u0660\u0662\u0666-01-02T10:00:00Z", "RFC 3339"),
    ],
)
def test_a_business_time_refuses_other_shapes(value: Any, message: str) -> None:
    assert message in _message(DATE_TIME, value)


def test_python_callers_pass_aware_datetimes() -> None:
    aware = datetime(2026, 1, 2, 10, tzinfo=timezone(timedelta(hours=-5)))
    assert DATE_TIME.validate_python(aware) == aware
    with pytest.raises(ValidationError, match="UTC offset"):
        DATE_TIME.validate_python(datetime(2026, 1, 2, 10))
    with pytest.raises(ValidationError):
        DATE_TIME.validate_python(date(2026, 1, 2))


def test_date_schemas_declare_format_pattern_and_bounds() -> None:
    day, moment = DATE.json_schema(), DATE_TIME.json_schema()
    assert (day["type"], day["format"], moment["type"], moment["format"]) == ("string", "date", "string", "date-time")
    for schema in (day, moment):
        assert "1970-01-01" in schema["description"] and "2199-12-31" in schema["description"]
    assert re.search(day["pattern"], "2026-01-05") and not re.search(day["pattern"], "2200-01-01")
    assert re.search(moment["pattern"], "2026-01-02T10:00:00Z")
    assert not re.search(moment["pattern"], "2026-01-02T10:00:00")


@QUIET
@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2300, 12, 31)).map(date.isoformat) | st.text(max_size=12))
def test_the_date_schema_states_exactly_what_is_accepted(value: str) -> None:
    try:
        date.fromisoformat(value)  # what "format": "date" adds to the pattern
        is_date = True
    except ValueError:
        is_date = False
    allowed = bool(re.search(DATE.json_schema()["pattern"], value)) and is_date
    assert allowed == _accepts(DATE, value), value


@QUIET
@given(
    st.datetimes(
        min_value=datetime(1960, 1, 1),
        max_value=datetime(2210, 12, 31),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]),
    )
)
def test_the_date_time_schema_matches_what_is_accepted_away_from_the_edges(moment: datetime) -> None:
    # Near the bounds the offset decides (1970-01-01T00:30+01:00 is 1969 in UTC): the description says so.
    text = moment.isoformat()
    allowed = bool(re.search(DATE_TIME.json_schema()["pattern"], text))
    if moment.year not in (1969, 1970, 2199, 2200):
        assert allowed == _accepts(DATE_TIME, text), text
    elif not allowed:
        assert not _accepts(DATE_TIME, text), text
    if _accepts(DATE_TIME, text):  # and what is accepted is written back in a form accepted again
        parsed = DATE_TIME.validate_json(json.dumps(text))
        assert DATE_TIME.validate_json(DATE_TIME.dump_json(parsed)) == parsed
        assert DATE.validate_json(DATE.dump_json(parsed.date())) == parsed.date()
