"""The CRM mapping engine: Salesforce JSON to the canonical contract, driven by mappings/salesforce.toml."""

from __future__ import annotations

import copy
import json
import time
import tomllib
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.canonical.contract import ACME_EXAMPLE, ContractIn
from app.canonical.intake import ContractState, MappingFailure
from system_apis.crm.mapping import MAPPINGS_DIR, VendorMappings
from system_apis.crm.mapping_spec import MappingFileError, parse_mapping
from tests.salesforce import amendment_event, encode, line, salesforce_event

MAPPINGS = VendorMappings.load()


def read(event: Any, mappings: VendorMappings = MAPPINGS) -> Any:
    body = event if isinstance(event, bytes) else encode(event)
    return mappings.read_contract_event("salesforce", body)


def state_of(event: Any) -> ContractState:
    mapped = read(event)
    assert isinstance(mapped.result, ContractState), mapped.result
    return mapped.result


def failure_of(event: Any, mappings: VendorMappings = MAPPINGS) -> MappingFailure:
    mapped = read(event, mappings)
    assert isinstance(mapped.result, MappingFailure), mapped.result
    return mapped.result


def locs(failure: MappingFailure) -> dict[tuple[str | int, ...], str]:
    return {tuple(e.loc): e.msg for e in failure.errors}


# --- the example ------------------------------------------------------------------------------


def test_the_api_md_example_is_the_canonical_acme_contract() -> None:
    mapped = read(salesforce_event())
    assert mapped.subject == "800XX0001"
    assert isinstance(mapped.result, ContractState)
    assert (mapped.result.version, mapped.result.effective_date, mapped.result.reason) == (1, None, None)
    # CustomerSignedDate is a date: signed_at is that day at 00:00:00Z.
    expected = ContractIn.model_validate({**ACME_EXAMPLE, "signed_at": "2026-01-02T00:00:00Z"})
    assert mapped.result.contract == expected
    assert mapped.result.contract.model_dump(mode="json") == expected.model_dump(mode="json")


def test_the_encoder_writes_bare_numbers() -> None:
    assert b'"Total_Value__c": 300000.00,' in encode(salesforce_event())


# --- numbers by their exact text ------------------------------------------------------------------


def test_amounts_keep_their_exact_decimal_text() -> None:
    event = salesforce_event(Billing_Model__c="Time and Materials", Total_Value__c=None, Time_Cap__c=Decimal("0.1"))
    event["OpportunityLineItems"] = []
    event["Rate_Cards__r"][0]["Rate__c"] = Decimal("200.10")
    contract = state_of(event).contract
    assert contract.time_cap == Decimal("0.1") and str(contract.time_cap) == "0.1"
    assert str(contract.rate_card[0].rate) == "200.10"
    assert contract.model_dump(mode="json")["time_cap"] == "0.1"
    assert str(state_of(salesforce_event()).contract.total_value) == "300000.00"


def test_a_value_a_float_would_change_is_read_exactly() -> None:
    # 0.1 + 0.2 as floats is 0.30000000000000004; read as text the sum is exact.
    event = salesforce_event(Total_Value__c=Decimal("0.30"))
    event["OpportunityLineItems"] = [
        line("M1", "One", "0.10", "2026-03-31", None),
        line("M2", "Two", "0.20", "2026-04-30", None),
    ]
    contract = state_of(event).contract
    assert sum(m.amount for m in contract.milestones) == contract.total_value == Decimal("0.30")


def test_integers_exponents_and_negative_zero_read_as_amounts() -> None:
    body = encode(salesforce_event(Time_Cap__c=Decimal("0"))).replace(b"300000.00", b"3.0000000E+5")
    body = body.replace(b'"Time_Cap__c": 0', b'"Time_Cap__c": -0.00')
    contract = state_of(body).contract
    assert contract.total_value == Decimal("300000") and contract.model_dump(mode="json")["total_value"] == "300000.00"
    assert contract.model_dump(mode="json")["time_cap"] == "0.00"  # never "-0.00", which would not read back


def test_decimal_strings_are_taken_too() -> None:
    contract = state_of(salesforce_event(Total_Value__c="300000.00")).contract
    assert contract.total_value == Decimal("300000.00")


# --- lists, keys, value maps ------------------------------------------------------------------------


def test_depends_on_is_split_on_semicolons_with_blanks_dropped() -> None:
    event = salesforce_event(Total_Value__c=Decimal("300000.00"))
    event["OpportunityLineItems"][2]["Depends_On__c"] = " M1 ;; M2;  ;"
    event["OpportunityLineItems"][1]["Depends_On__c"] = None
    milestones = state_of(event).contract.milestones
    assert [m.depends_on for m in milestones] == [[], [], ["M1", "M2"]]


def test_billing_model_goes_through_its_value_map() -> None:
    event = salesforce_event(Billing_Model__c="Time and Materials")
    assert state_of(event).contract.billing_model == "time_and_materials"
    failure = failure_of(salesforce_event(Billing_Model__c="fixed_fee"))
    assert locs(failure) == {
        ("body", "Contract", "Billing_Model__c"): "'fixed_fee' is not a known value; "
        "expected one of 'Fixed Fee', 'Time and Materials'"
    }


def test_missing_lists_are_empty_and_missing_optional_objects_null() -> None:
    event = salesforce_event(Billing_Model__c="Time and Materials", Signed_Document_URI__c=None)
    for name in ("OpportunityLineItems", "Rate_Cards__r", "Expense_Allowances__r"):
        del event[name]
    contract = state_of(event).contract
    assert (contract.milestones, contract.rate_card, contract.document) == ([], [], None)


def test_an_amendment_carries_its_version_date_and_reason() -> None:
    state = state_of(amendment_event())
    assert (state.version, state.effective_date, state.reason) == (2, date(2026, 6, 1), "CO-7 scope extension")
    assert [m.key for m in state.contract.milestones] == ["M1", "M2", "M3", "M4"]
    assert state.contract.total_value == Decimal("360000.00")
    assert state.contract.reimbursable_expenses[0].cap == Decimal("20000.00")


# --- errors at the vendor's locations ---------------------------------------------------------------


def test_several_failures_are_reported_at_once_by_salesforce_field() -> None:
    event = salesforce_event(Total_Value__c=True, ContractNumber=Decimal("12345.50"), Account="Acme")
    event["OpportunityLineItems"][1]["TotalPrice"] = "a lot"
    event["OpportunityLineItems"][2]["ServiceDate"] = "2026-02-30"
    event["Rate_Cards__r"] = [7]
    del event["Contract"]["StartDate"]
    assert locs(failure_of(event)) == {
        ("body", "Contract", "ContractNumber"): "must be text, not a number",
        ("body", "Contract", "Account"): "must be an object",
        ("body", "Contract", "Total_Value__c"): "must be a number, not true",
        ("body", "Rate_Cards__r", 0): "must be an object",
        ("body", "Contract", "StartDate"): "Field required",
        ("body", "OpportunityLineItems", 1, "TotalPrice"): "must be a decimal string of ASCII digits with an "
        'optional leading minus and fractional part, e.g. "1234.50" (no spaces, exponents, digit separators or "+")',
        ("body", "OpportunityLineItems", 2, "ServiceDate"): "is not a calendar date",
    }


def test_contract_rule_errors_name_salesforce_fields() -> None:
    event = salesforce_event(EndDate="2025-12-31")
    event["OpportunityLineItems"][0]["TotalPrice"] = Decimal("100000.005")
    event["OpportunityLineItems"][1]["Depends_On__c"] = "M1;M9"
    event["Expense_Allowances__r"].append({"Category__c": "travel", "Cap__c": Decimal("1.00")})
    assert locs(failure_of(event)) == {
        ("body", "Contract", "EndDate"): "must not be before start_date",
        ("body", "Expense_Allowances__r", 1, "Category__c"): "category travel is listed twice",
        ("body", "OpportunityLineItems", 1, "Depends_On__c"): "milestone M2 depends on unknown milestones: M9",
        ("body", "OpportunityLineItems", 0, "TotalPrice"): "USD amounts have at most 2 decimal places; "
        "100000.005 has more",
    }


def test_a_missing_id_or_version_is_a_failure_without_a_subject() -> None:
    event = salesforce_event()
    del event["Contract"]["Id"], event["Contract"]["Version__c"]
    mapped = read(event)
    assert mapped.subject is None
    assert isinstance(mapped.result, MappingFailure)
    assert locs(mapped.result) == {
        ("body", "Contract", "Id"): "Field required",
        ("body", "Contract", "Version__c"): "Field required",
    }
    assert "2 errors" in mapped.result.detail


@pytest.mark.parametrize(
    ("version", "msg"),
    [
        ("1", "must be a whole number, not the text '1'"),
        (Decimal("1.5"), "must be a whole number, not a number"),
        (Decimal("0"), "Input should be greater than or equal to 1"),
    ],
)
def test_the_version_is_a_whole_number_from_one(version: Any, msg: str) -> None:
    assert locs(failure_of(salesforce_event(Version__c=version))) == {("body", "Contract", "Version__c"): msg}


def test_huge_exponents_are_refused_without_expanding_them() -> None:
    body = encode(salesforce_event(Version__c=Decimal(7), Time_Cap__c=Decimal(8)))
    body = body.replace(b'"Version__c": 7', b'"Version__c": 1E+999999999')
    body = body.replace(b'"Time_Cap__c": 8', b'"Time_Cap__c": 1E+999999999')
    failure, seconds = _timed(body)
    assert locs(failure) == {
        ("body", "Contract", "Version__c"): "must be a whole number, not a number",
        ("body", "Contract", "Time_Cap__c"): "amount is out of range (its absolute value must be below 1e15)",
    }
    assert seconds < 1


def test_a_whole_number_written_with_decimals_is_a_version() -> None:
    assert state_of(salesforce_event(Version__c=Decimal("1.0"))).version == 1


def test_an_amendment_needs_its_effective_date() -> None:
    failure = failure_of(salesforce_event(Version__c=2))
    assert locs(failure) == {
        ("body", "Contract", "Effective_Date__c"): "an amendment (a version above 1) needs its effective date"
    }


def test_signed_date_must_be_a_date() -> None:
    failure = failure_of(salesforce_event(CustomerSignedDate="2026-01-02T10:00:00Z"))
    assert locs(failure) == {
        ("body", "Contract", "CustomerSignedDate"): "must be a date (YYYY-MM-DD), not '2026-01-02T10:00:00Z'"
    }


def test_control_characters_and_lone_surrogates_are_refused_where_they_are() -> None:
    body = encode(salesforce_event(ContractNumber="SOW\u0000", Legal_Entity__c="X"))
    body = body.replace(b'"X"', b'"\\ud800"')
    assert locs(failure_of(body)) == {
        ("body", "Contract", "ContractNumber"): "must not contain control characters",
        ("body", "Contract", "Legal_Entity__c"): "must not contain control characters",
    }


# --- hostile input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "msg"),
    [
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
        (b"\xff\xfe\x00", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"Contract"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b'{"Contract": {"Total_Value__c": NaN}}', "not valid JSON"),
        (b"[" * 200_000 + b"]" * 200_000, "the JSON is nested too deeply"),
        (b'{"a":' * 200_000 + b"1" + b"}" * 200_000, "the JSON is nested too deeply"),
    ],
)
def test_what_is_not_a_json_object_fails_as_a_whole(body: bytes, msg: str) -> None:
    failure = failure_of(body)
    [error] = failure.errors
    assert error.loc == ["body"] and error.msg.startswith(msg)


def test_a_deeply_nested_field_value_is_just_a_wrong_type() -> None:
    body = encode(salesforce_event(ContractNumber="X")).replace(b'"X"', b"[" * 500 + b"]" * 500)
    assert locs(failure_of(body)) == {("body", "Contract", "ContractNumber"): "must be text, not a list"}


def test_the_subject_and_contract_may_be_any_shape() -> None:
    assert read({"Contract": []}).subject is None
    assert locs(failure_of({"Contract": []}))[("body", "Contract")] == "must be an object"
    assert read(salesforce_event(Id=Decimal("800"))).subject is None
    assert read(salesforce_event(Id="x" * 201)).subject is None


def _timed(body: bytes) -> tuple[MappingFailure, float]:
    started = time.perf_counter()
    failure = failure_of(body)
    return failure, time.perf_counter() - started


def test_lists_over_the_canonical_limit_are_refused_before_any_item_is_read() -> None:
    event = salesforce_event()
    event["OpportunityLineItems"] = [{"Milestone_Key__c": Decimal(1)}] * 501
    assert locs(failure_of(event)) == {("body", "OpportunityLineItems"): "at most 500 items, not 501"}
    huge = encode(salesforce_event()).replace(b'"Rate_Cards__r": [', b'"Rate_Cards__r": [' + b"{}," * 300_000)
    failure, seconds = _timed(huge)
    assert locs(failure) == {("body", "Rate_Cards__r"): "at most 500 items, not 300001"}
    assert seconds < 2


@pytest.mark.parametrize(
    "where",
    [
        "ContractNumber",
        "Legal_Entity__c",
        "Total_Value__c",
        "Signed_Document_URI__c",
        "CustomerSignedDate",
        "Amendment_Reason__c",
    ],
)
def test_a_megabyte_string_costs_no_more_than_reading_it(where: str) -> None:
    huge = "9" * 1_000_000
    failure, seconds = _timed(encode(salesforce_event(**{where: huge})))
    [(loc, msg)] = locs(failure).items()
    assert loc == ("body", "Contract", where) and len(msg) < 300  # the value is never echoed whole
    assert seconds < 2


def test_a_megabyte_of_dependency_keys_and_a_megabyte_number_stay_linear() -> None:
    event = salesforce_event()
    event["OpportunityLineItems"][2]["Depends_On__c"] = "M2;" + ";".join(f"K{i}" for i in range(150_000))
    failure, seconds = _timed(encode(event))
    [(loc, msg)] = locs(failure).items()
    assert loc == ("body", "OpportunityLineItems", 2, "Depends_On__c") and msg.startswith("milestone M3 depends")
    assert seconds < 2
    digits = encode(salesforce_event(Total_Value__c=Decimal(1))).replace(
        b'"Total_Value__c": 1,', b'"Total_Value__c": ' + b"1" * 1_000_000 + b","
    )
    failure, seconds = _timed(digits)
    assert locs(failure) == {
        ("body", "Contract", "Total_Value__c"): "amount is out of range (its absolute value must be below 1e15)"
    }
    assert seconds < 2


def test_a_vendor_without_a_mapping_is_a_failure_not_an_exception() -> None:
    mapped = MAPPINGS.read_contract_event("hubspot", b"{}")
    assert isinstance(mapped.result, MappingFailure)
    assert MAPPINGS.vendors() == ["salesforce"]


# --- the mapping is data ----------------------------------------------------------------------------


def _document() -> dict[str, Any]:
    with (MAPPINGS_DIR / "salesforce.toml").open("rb") as file:
        return tomllib.load(file)


def test_a_new_field_or_value_is_a_change_to_the_mapping_file_only(tmp_path: Path) -> None:
    event = salesforce_event(Legal_Entity__c="Acme US Inc.", Customer_Tax_Id__c=None, Tax_Id__c="US-123")
    assert ("body", "Contract", "Legal_Entity__c") in locs(failure_of(event))

    document = _document()
    document["contract"]["legal_entity"] = {
        "from": "Contract.Legal_Entity__c",
        "values": {"Acme US Inc.": "US01", "US01": "US01"},
    }
    document["contract"]["tax.customer_tax_id"] = "Contract.Tax_Id__c"
    (tmp_path / "salesforce.toml").write_text(_toml(document))
    fixed = VendorMappings.load(tmp_path)
    mapped = fixed.read_contract_event("salesforce", encode(event))
    assert isinstance(mapped.result, ContractState)
    assert mapped.result.contract.legal_entity == "US01"
    assert mapped.result.contract.tax.customer_tax_id == "US-123"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"contract": {"legal_entitty": "Contract.Legal_Entity__c"}}, "no field legal_entitty"),
        ({"contract": {"customer": "Contract.AccountId"}}, "customer is an object"),
        ({"contract": {"total_value": {"from": "Contract.X", "type": "float"}}}, "type must be one of"),
        ({"contract": {"number": {"from": "Contract.X", "type": "decimal", "values": {"a": "b"}}}}, "values must"),
        ({"contract": {"number": {"from": "Contract..X"}}}, "dotted field path"),
        ({"lists": {"projects": {"from": "X", "fields": {}}}}, "no list of objects named projects"),
        ({"event": {}}, "event.version"),
        ({"surprise": 1}, "unknown entries surprise"),
    ],
)
def test_a_broken_mapping_file_fails_at_load(change: dict[str, Any], message: str) -> None:
    document = _document()
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(document.get(key), dict) and value:
            document[key] = {**document[key], **value}
        else:
            document[key] = value
    with pytest.raises(MappingFileError, match=message):
        parse_mapping("salesforce", document)


def _toml(document: dict[str, Any]) -> str:
    """Just enough TOML writing for a mapping document (tomllib only reads)."""

    def value(v: Any) -> str:
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(i) for i in v) + "]"
        return "{ " + ", ".join(f"{json.dumps(k)} = {value(i)}" for k, i in v.items()) + " }"

    lines = [f"{k} = {value(v)}" for k, v in document.items() if not isinstance(v, dict)]
    for table in ("constants", "contract", "event"):
        lines += [f"[{table}]", *(f"{json.dumps(k)} = {value(v)}" for k, v in document[table].items())]
    for name, spec in document["lists"].items():
        lines += [f"[lists.{name}]", f"from = {value(spec['from'])}", f"[lists.{name}.fields]"]
        lines += [f"{json.dumps(k)} = {value(v)}" for k, v in spec["fields"].items()]
    return "\n".join(lines) + "\n"


def test_the_toml_writer_round_trips_the_shipped_mapping(tmp_path: Path) -> None:
    document = copy.deepcopy(_document())
    assert tomllib.loads(_toml(document)) == document


# What the fuzz sends: every JSON shape, numbers as Salesforce would write them (exact decimals).
json_scalars = st.none() | st.booleans() | st.integers() | st.decimals(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    json_scalars | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_LISTS = ("OpportunityLineItems", "Rate_Cards__r", "Expense_Allowances__r")
EXAMPLE_PATHS = [("Contract", name) for name in salesforce_event()["Contract"]] + [
    (name, 0, field) for name in _LISTS for field in salesforce_event()[name][0]
]


RELATED: dict[Any, Any] = {
    ("Contract", "Version__c"): ("Contract", "Effective_Date__c"),
    "Milestone_Key__c": "Depends_On__c",
}


@settings(max_examples=300, deadline=None, database=None)
@given(where=st.sampled_from(EXAMPLE_PATHS), value=json_values)
@example(where=("Contract", "Version__c"), value=2)  # found by CI: the error names the effective date
@example(where=("OpportunityLineItems", 0, "Milestone_Key__c"), value="x")  # names the dependant's Depends_On__c
def test_any_value_anywhere_maps_or_fails_with_a_vendor_location(where: tuple[Any, ...], value: Any) -> None:
    event = salesforce_event()
    target = event
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = value
    mapped = read(event)  # never raises
    if isinstance(mapped.result, MappingFailure):
        assert mapped.result.errors and all(e.loc[0] == "body" for e in mapped.result.errors)
        named = {tuple(e.loc[1 : 1 + len(where)]) for e in mapped.result.errors}
        fields = {e.loc[-1] for e in mapped.result.errors}
        # A cross-field rule names the field it ties the value to: a version above 1 is an amendment,
        # which needs its effective date (the example event has none); a renamed milestone key leaves
        # another milestone depending on a key that no longer exists.
        assert where in named or RELATED.get(where) in named or RELATED.get(where[-1]) in fields, mapped.result.errors


@settings(max_examples=200, deadline=None, database=None)
@given(body=json_values)
def test_any_json_at_all_is_a_failure_never_an_exception(body: Any) -> None:
    mapped = read(body)
    assert isinstance(mapped.result, MappingFailure) and mapped.result.errors
    mapped = read({"Contract": body})
    assert isinstance(mapped.result, MappingFailure) and mapped.result.errors
