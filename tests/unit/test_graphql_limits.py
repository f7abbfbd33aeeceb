"""The GraphQL guard's rules on parsed documents and variables, and how errors reach clients.

The rules are linear by construction (each fragment read once, nothing recursive); these tests pin
what they count and that documents built to blow up a recursive walk are refused, not followed.
"""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from graphql import GraphQLError, parse
from structlog.testing import capture_logs

from app.errors import NotFound
from experience_apis.graphql_errors import (
    INTERNAL_ERROR,
    FaultLoggingSchema,
    MaskFaults,
    RequestError,
    execution_payload,
    request_error_problem,
)
from experience_apis.guard import MAX_VARIABLE_VALUES, check_variables
from experience_apis.hardening import DocumentLimits, check_document
from experience_apis.schema import build_schema

LIMITS = DocumentLimits()
SCHEMA = build_schema()._schema


def refusals(text: str, limits: DocumentLimits = LIMITS) -> list[tuple[str, str]]:
    return [(e.extensions["code"], e.message) for e in check_document(parse(text), limits)]


def fan_out(levels: int) -> str:
    lines = ["fragment F0 on Viewer { name }"]
    lines += [f"fragment F{i} on Viewer {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels)]
    return "\n".join([*lines, f"query {{ viewer {{ ...F{levels - 1} }} }}"])


# ------------------------------------------------------------------------------------------- depth


def test_depth_is_the_number_of_fields_on_the_longest_path() -> None:
    assert refusals("{ viewer { name } }", DocumentLimits(max_depth=2)) == []
    assert refusals("{ viewer { name } }", DocumentLimits(max_depth=1)) == [
        ("GRAPHQL_LIMIT_EXCEEDED", "the anonymous operation is deeper than 1 fields")
    ]


def test_introspection_fields_count_towards_depth() -> None:
    introspection = (
        "query Schema { __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { name } } } } } "
        "} } } } }"
    )
    assert refusals(introspection) == []  # 10 fields deep: at the limit
    assert refusals(introspection, DocumentLimits(max_depth=9)) == [
        ("GRAPHQL_LIMIT_EXCEEDED", "operation 'Schema' is deeper than 9 fields")
    ]
    assert refusals('{ __type(name: "Query") { fields { type { ofType { name } } } } }', DocumentLimits(max_depth=4))


def test_depth_adds_up_through_fragments_and_inline_fragments() -> None:
    text = (
        "{ contracts { ... on Contract { milestones { ...M } } } } fragment M on Milestone { ... on Milestone { key } }"
    )
    assert refusals(text, DocumentLimits(max_depth=3)) == []
    assert refusals(text, DocumentLimits(max_depth=2))


# ------------------------------------------------------------------------------ aliases and size


def test_aliases_count_at_every_place_a_fragment_is_spread() -> None:
    fragment = "fragment N on Viewer { a: name b: role }"
    assert refusals(f"{{ viewer {{ ...N }} }} {fragment}", DocumentLimits(max_aliases=2)) == []
    twice = f"{{ viewer {{ ...N }} v: viewer {{ ...N }} }} {fragment}"  # 2 + 1 + 2 aliases
    assert refusals(twice, DocumentLimits(max_aliases=5)) == []
    [(code, message)] = refusals(twice, DocumentLimits(max_aliases=4))
    assert code == "GRAPHQL_LIMIT_EXCEEDED" and message.startswith("the document uses more than 4 aliases")


def test_aliases_of_several_operations_add_up() -> None:
    text = "query A { a: viewer { name } } query B { b: viewer { name } }"
    assert refusals(text, DocumentLimits(max_aliases=2)) == []
    assert refusals(text, DocumentLimits(max_aliases=1))


@pytest.mark.parametrize("levels", [12, 29, 64, 3000])
def test_an_exponential_fan_out_is_refused_from_its_memoised_size(levels: int) -> None:
    [(code, message)] = refusals(fan_out(levels))
    assert code == "GRAPHQL_LIMIT_EXCEEDED"
    assert message.startswith("the document expands to more than 2000 selections")


def test_fan_out_small_enough_to_expand_still_has_its_repeats_counted() -> None:
    [(code, message)] = refusals(fan_out(10))  # 1,024 'name' at one place: 523,776 pairs to compare
    assert code == "GRAPHQL_LIMIT_EXCEEDED" and "'name'" in message


def test_a_long_chain_of_fragments_is_walked_without_recursion() -> None:
    chain = " ".join(f"fragment F{i} on Viewer {{ ...F{i + 1} }}" for i in range(5000))
    text = "{ viewer { ...F0 } } " + chain + " fragment F5000 on Viewer { name }"
    assert refusals(text, DocumentLimits(max_selections=5003)) == []  # 5,001 spreads, 2 fields
    assert refusals(text, DocumentLimits(max_selections=5002))


# ------------------------------------------------------------------------------------ repeated fields


def test_same_named_field_pairs_are_bounded() -> None:
    def names(count: int) -> str:
        return "{ viewer { " + " ".join(["name"] * count) + " } }"

    assert refusals(names(63)) == []  # 63 * 62 / 2 = 1953 pairs
    [(code, message)] = refusals(names(64))  # 2016 pairs
    assert code == "GRAPHQL_LIMIT_EXCEEDED" and "'name'" in message and "2000" in message


def test_repeated_fields_meet_again_below_their_parent() -> None:
    # 40 'viewer' (780 pairs) whose 'name' fields merge below them (another 780): 1560 in all.
    text = "{ " + " ".join(["viewer { name }"] * 40) + " }"
    assert refusals(text, DocumentLimits(max_repeated_pairs=1560)) == []
    assert refusals(text, DocumentLimits(max_repeated_pairs=1559))


def test_aliases_are_distinct_response_names() -> None:
    text = "{ " + " ".join(f"a{i}: viewer {{ name }}" for i in range(20)) + " }"
    assert refusals(text, DocumentLimits(max_repeated_pairs=0)) == []


# ----------------------------------------------------------------------------------------- fragments


@pytest.mark.parametrize(
    "fragments",
    [
        "fragment A on Viewer { name ...A }",
        "fragment A on Viewer { ...B } fragment B on Viewer { ...C } fragment C on Viewer { ...A }",
        " ".join(f"fragment A{i} on Viewer {{ ...A{(i + 1) % 4000} }}" for i in range(4000)),
    ],
    ids=["self", "three", "4000-long"],
)
def test_a_fragment_cycle_is_refused_before_anything_follows_it(fragments: str) -> None:
    first = fragments.split()[1]
    [(code, message)] = refusals(f"{{ viewer {{ ...{first} }} }} {fragments}")
    assert code == "GRAPHQL_VALIDATION_FAILED" and message.startswith("Cannot spread fragment")


def test_unused_and_duplicate_fragments_are_refused() -> None:
    assert refusals("{ viewer { name } } fragment U on Viewer { name }") == [
        ("GRAPHQL_VALIDATION_FAILED", "Fragment 'U' is never used.")
    ]
    assert refusals("{ viewer { ...A } } fragment A on Viewer { name } fragment A on Viewer { role }") == [
        ("GRAPHQL_VALIDATION_FAILED", "There can be only one fragment named 'A'.")
    ]


def test_an_unknown_fragment_is_left_to_graphql_core() -> None:
    assert refusals("{ viewer { ...Missing } }") == []


# ----------------------------------------------------------------------------- control characters


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('{ contracts(status: "a\\u0000") { id } }', "argument 'status' of field 'contracts'"),
        ('{ contracts(status: """a\u0001""") { id } }', "argument 'status' of field 'contracts'"),
        (
            '{ viewer @skip(if: false) { name @include(if: true) } c: contract(id: "\\u007f") { id } }',
            "argument 'id' of field 'contract'",
        ),  # fmt: skip
        ('query($s: String = "\\u001b") { contracts(status: $s) { id } }', "the default value of variable '$s'"),
        (
            '{ viewer { ...V } } fragment V on Viewer @x(a: ["ok", {b: "\\u0002"}]) { name }',
            "argument 'a' of @x on fragment 'V'",
        ),  # fmt: skip
    ],
    ids=["nul", "block-string", "del", "default", "directive"],
)
def test_control_characters_in_string_literals_are_refused(text: str, where: str) -> None:
    assert refusals(text) == [("BAD_USER_INPUT", f"{where} must not contain control characters")]


def test_tab_newline_and_carriage_return_are_allowed() -> None:
    assert refusals('{ contracts(status: "a\\tb\\nc\\rd") { id } }') == []


# ------------------------------------------------------------------------------------------ variables

BY_ID = parse(
    "query Q($id: ID!, $s: String, $f: [String!]) { contract(id: $id) { id } "
    "contracts(status: $s, after: $s) { ...C } } fragment C on Contract { id again: contracts { id } }"
)


def variable_errors(variables: dict[str, Any]) -> list[tuple[str, list[Any], str]]:
    return [
        (e.extensions["code"], getattr(e, "loc", None), e.message)
        for e in check_variables(SCHEMA, BY_ID, None, variables)
    ]


def test_coercion_errors_name_the_variable_and_every_argument_using_it() -> None:
    [(code, loc, message)] = variable_errors({"id": {"a": 1}})
    assert code == "BAD_USER_INPUT" and loc == ["variables", "id"]
    assert message == "Variable '$id' has invalid value: ID cannot represent value: {'a': 1} (used by contract(id:))"
    [(_, loc, message)] = variable_errors({"id": "x", "s": ["a"]})
    assert loc == ["variables", "s"] and message.endswith("(used by contracts(status:), contracts(after:))")
    assert variable_errors({"id": "x", "f": ["a", None]})[0][1] == ["variables", "f"]
    [(_, loc, message)] = variable_errors({})
    assert loc == ["variables", "id"] and "was not provided" in message or "to be provided" in message


def test_control_characters_in_variables_are_located() -> None:
    assert variable_errors({"id": "x", "f": ["ok", "b\x00d"]}) == [
        ("BAD_USER_INPUT", ["variables", "f", 1], "Variable '$f' must not contain control characters (at f[1])")
    ]
    [(_, loc, _)] = variable_errors({"id": "x", "other": {"k\x1f": 1}})
    assert loc == ["variables", "other", "k\x1f"]


def test_too_many_values_stop_the_walk() -> None:
    assert variable_errors({"id": "x", "f": ["a"] * (MAX_VARIABLE_VALUES - 2)}) == []
    [(code, loc, _)] = variable_errors({"id": "x", "f": ["a"] * MAX_VARIABLE_VALUES})
    assert code == "GRAPHQL_LIMIT_EXCEEDED" and loc == ["variables"]


def test_nesting_deeper_than_the_interpreter_recursion_limit_is_walked() -> None:
    deep: Any = "x"
    for _ in range(5000):
        deep = [deep]
    [(code, loc, message)] = variable_errors({"id": deep})
    assert code == "BAD_USER_INPUT" and loc == ["variables"] and message == "Variable values are nested too deeply."


# ------------------------------------------------------------------------------ errors to clients


@strawberry.type
class _Query:
    @strawberry.field
    def boom(self) -> str | None:
        raise RuntimeError("password=hunter2 in SELECT * FROM secret")

    @strawberry.field
    def missing(self) -> str | None:
        raise NotFound("contract 42 does not exist")

    @strawberry.field
    def fine(self) -> str:
        return "ok"


async def test_faults_are_masked_and_logged_and_domain_errors_keep_their_code() -> None:
    schema = FaultLoggingSchema(query=_Query, extensions=[MaskFaults])
    with capture_logs() as logs:
        result = await schema.execute("{ boom missing fine }")
    payload = execution_payload(result.data, result.errors)
    assert payload["data"] == {"boom": None, "missing": None, "fine": "ok"}
    by_path = {tuple(e["path"]): e for e in payload["errors"]}
    assert by_path[("boom",)]["extensions"] == {"code": INTERNAL_ERROR}
    assert "hunter2" not in str(payload)
    assert by_path[("missing",)] == {
        "message": "contract 42 does not exist",
        "locations": [{"line": 1, "column": 8}],
        "path": ["missing"],
        "extensions": {"code": "NOT_FOUND"},
    }
    [logged] = [entry for entry in logs if entry["event"] == "graphql_fault"]
    assert logged["log_level"] == "error" and isinstance(logged["exc_info"], RuntimeError)
    assert logged["path"] == ["boom"]


def test_a_request_error_problem_speaks_graphql_and_problem_json() -> None:
    error = RequestError("Variable '$id' has invalid value", "BAD_USER_INPUT", ["variables", "id"])
    body = request_error_problem([error])
    assert body["status"] == 400 and body["code"] == "BAD_USER_INPUT"
    assert body["type"].endswith("/bad-user-input") and body["title"] == "Bad Request"
    assert body["errors"] == [
        {
            "message": "Variable '$id' has invalid value",
            "extensions": {"code": "BAD_USER_INPUT"},
            "loc": ["variables", "id"],
            "msg": "Variable '$id' has invalid value",
            "code": "BAD_USER_INPUT",
        }
    ]


def test_a_fault_before_execution_is_a_500_that_shows_nothing() -> None:
    fault = GraphQLError("KeyError: 'secret'", original_error=KeyError("secret"))
    body = request_error_problem([fault])
    assert body["status"] == 500 and body["code"] == INTERNAL_ERROR and "secret" not in str(body)
