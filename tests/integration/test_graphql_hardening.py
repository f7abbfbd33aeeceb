"""POST /graphql against hostile and mistaken requests: refused early, in linear time, with a clean 4xx.

Refused before execution: 400 problem+json whose ``errors`` are GraphQL errors; envelopes of the
wrong shape: 422; executed operations: 200 (experience_apis/graphql_errors.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager

from app.main import create_app
from experience_apis.guard import MAX_VARIABLE_VALUES
from tests.factories import acme, auth, register

PORTAL = Path(__file__).resolve().parents[2] / "graphql" / "operations" / "portal" / "contract.graphql"
CONTRACT_BY_ID = "query($id: ID!) { contract(id: $id) { id number } }"
INTROSPECTION_DEPTH_10 = (
    "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } }"
)


def fan_out(levels: int) -> str:
    """``F_n`` spreads ``F_{n-1}`` twice: a document of ``levels`` lines that expands to 2^levels fields."""
    lines = ["fragment F0 on Viewer { name }"]
    lines += [f"fragment F{i} on Viewer {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels)]
    return "\n".join([*lines, f"query {{ viewer {{ ...F{levels - 1} }} }}"])


async def post(api: httpx.AsyncClient, key: str, body: dict[str, Any]) -> httpx.Response:
    return await api.post("/graphql", headers=auth(key), json=body)


def refused(response: httpx.Response, code: str) -> dict[str, Any]:
    """Assert a 400 request error carrying ``code``; return its problem body."""
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == 400 and body["code"] == code and "data" not in body
    for item in body["errors"]:
        assert item["message"] == item["msg"] and item["extensions"]["code"] == item["code"]
        assert isinstance(item["loc"], list)
    assert body["errors"][0]["code"] == code
    return body


# ------------------------------------------------------------------------------- the fan-out DoS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """The app behind a real uvicorn server on its own thread and event loop: a blocked loop shows."""
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="psbridge-under-test", daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started or not thread.is_alive():
                break
            await asyncio.sleep(0.02)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, 30)


async def test_fragment_fan_out_is_refused_while_healthz_keeps_answering(settings, sandbox_transport, keys):
    document = fan_out(29)
    assert len(document) < 1300  # 1.2 KB that expands to 2^29 fields
    async with served(create_app(settings, sandbox_transport)) as base, httpx.AsyncClient(base_url=base) as http:

        async def graphql() -> httpx.Response:
            # A guard only: before the fix this request held the event loop for hours.
            return await http.post("/graphql", json={"query": document}, headers=auth(keys["admin"]), timeout=120)

        async def probe() -> list[int]:
            return [(await http.get("/healthz", timeout=30)).status_code for _ in range(5)]

        answer, *probes = await asyncio.gather(graphql(), *(probe() for _ in range(8)))
    body = refused(answer, "GRAPHQL_LIMIT_EXCEEDED")
    assert "expands to more than 2000 selections" in body["detail"]
    assert all(status == 200 for statuses in probes for status in statuses)


@pytest.mark.parametrize("levels", [10, 20, 29, 200])
async def test_every_fan_out_is_refused_as_a_limit(api, keys, levels):
    refused(await post(api, keys["finance"], {"query": fan_out(levels)}), "GRAPHQL_LIMIT_EXCEEDED")


# ------------------------------------------------------------------------------------------ limits


async def test_depth_counts_introspection_fields(api, keys):
    # Depth is the number of fields on the longest path: this document is 10 deep, the limit.
    at_limit = await post(api, keys["admin"], {"query": INTROSPECTION_DEPTH_10})
    assert at_limit.status_code == 200 and at_limit.json()["data"]["__schema"]["types"]
    one_more = INTROSPECTION_DEPTH_10.replace("{ name }", "{ ofType { name } }")
    body = refused(await post(api, keys["admin"], {"query": one_more}), "GRAPHQL_LIMIT_EXCEEDED")
    assert body["errors"][0]["message"] == "the anonymous operation is deeper than 10 fields"
    assert body["errors"][0]["locations"] == [{"line": 1, "column": 1}]


async def test_depth_hidden_in_fragments_is_counted(api, keys):
    def document(of_types: int) -> str:
        chain = "name"
        for _ in range(of_types):
            chain = f"ofType {{ {chain} }}"
        return (
            "{ __schema { ...Types } } fragment Types on __Schema { types { fields { type { ...Chain } } } } "
            f"fragment Chain on __Type {{ {chain} }}"
        )

    assert (await post(api, keys["admin"], {"query": document(5)})).status_code == 200  # 4 + 6 = 10
    body = refused(await post(api, keys["admin"], {"query": document(6)}), "GRAPHQL_LIMIT_EXCEEDED")
    assert "deeper than 10 fields" in body["detail"]


async def test_aliases_hidden_in_fragments_are_counted(api, keys):
    eleven = " ".join(f"a{i}: name" for i in range(11))
    once = f"{{ viewer {{ ...Names }} }} fragment Names on Viewer {{ {eleven} }}"
    assert (await post(api, keys["admin"], {"query": once})).status_code == 200
    twice = f"{{ viewer {{ ...Names }} me: viewer {{ ...Names }} }} fragment Names on Viewer {{ {eleven} }}"
    body = refused(await post(api, keys["admin"], {"query": twice}), "GRAPHQL_LIMIT_EXCEEDED")
    assert body["errors"][0]["message"].startswith("the document uses more than 20 aliases")


async def test_a_fragment_cycle_is_refused_without_recursing(api, keys):
    cycle = "{ viewer { ...A } } fragment A on Viewer { ...B } fragment B on Viewer { name ...A }"
    body = refused(await post(api, keys["admin"], {"query": cycle}), "GRAPHQL_VALIDATION_FAILED")
    assert body["errors"][0]["message"] == "Cannot spread fragment 'A' within itself (via 'B')."
    itself = "{ viewer { ...A } } fragment A on Viewer { name ...A }"
    refused(await post(api, keys["admin"], {"query": itself}), "GRAPHQL_VALIDATION_FAILED")


async def test_repeated_fields_are_refused_before_the_quadratic_overlap_check(api, keys):
    # graphql-core compares every pair of same-named fields: 490 of them cost it about a second.
    repeated = "{ " + " ".join("viewer { name }" for _ in range(490)) + " }"
    body = refused(await post(api, keys["admin"], {"query": repeated}), "GRAPHQL_LIMIT_EXCEEDED")
    assert "'viewer'" in body["errors"][0]["message"]
    a_few = "{ " + " ".join("viewer { name }" for _ in range(5)) + " }"
    assert (await post(api, keys["admin"], {"query": a_few})).status_code == 200


async def test_an_over_long_document_is_refused_before_lexing(api, keys):
    comment = "# " + "x" * 200_000 + "\n{ viewer { name } }"
    body = refused(await post(api, keys["admin"], {"query": comment}), "GRAPHQL_LIMIT_EXCEEDED")
    assert "code points" in body["errors"][0]["message"]
    many_comments = "\n".join(["#"] * 3000) + "\n{ viewer { name } }"
    refused(await post(api, keys["admin"], {"query": many_comments}), "GRAPHQL_LIMIT_EXCEEDED")


async def test_unused_and_duplicate_fragments_are_refused(api, keys):
    unused = "{ viewer { name } } fragment Spare on Viewer { " + " ".join(["role"] * 100) + " }"
    body = refused(await post(api, keys["admin"], {"query": unused}), "GRAPHQL_VALIDATION_FAILED")
    assert body["errors"][0]["message"] == "Fragment 'Spare' is never used."
    twice = "{ viewer { ...A } } fragment A on Viewer { name } fragment A on Viewer { role }"
    refused(await post(api, keys["admin"], {"query": twice}), "GRAPHQL_VALIDATION_FAILED")


async def test_inline_fragments_nested_to_the_parser_limit_are_no_fault(api, keys):
    # Inline fragments add no depth; graphql-core's parser stops at 200 levels of nesting, and
    # what it accepts must validate and run inside the server's own stack without recursing out.
    for levels in (190, 250):
        query = "{ viewer { " + "... on Viewer { " * levels + "name" + " }" * levels + " } }"
        response = await post(api, keys["admin"], {"query": query})
        if levels < 200:
            assert response.status_code == 200 and response.json() == {"data": {"viewer": {"name": "test-admin"}}}
        else:
            refused(response, "GRAPHQL_PARSE_FAILED")


async def test_deeply_nested_literals_are_a_parse_error(api, keys):
    nested = "{ contracts(status: " + "[" * 900 + "]" * 900 + ") { id } }"
    body = refused(await post(api, keys["admin"], {"query": nested}), "GRAPHQL_PARSE_FAILED")
    assert "nested too deeply" in body["errors"][0]["message"]


# ------------------------------------------------------------------------------- client mistakes


@pytest.mark.parametrize(
    ("variables", "fragment"),
    [
        ({"id": {"a": 1}}, "ID cannot represent value"),
        ({"id": [1, 2]}, "ID cannot represent value"),
        ({}, "non-null type 'ID!' to be provided"),
        ({"id": None}, "non-null type 'ID!'"),
    ],
    ids=["object", "list", "missing", "null"],
)
async def test_a_bad_variable_is_named_with_the_argument_using_it(api, keys, variables, fragment):
    response = await post(api, keys["finance"], {"query": CONTRACT_BY_ID, "variables": variables})
    body = refused(response, "BAD_USER_INPUT")
    [error] = body["errors"]
    assert error["loc"] == ["variables", "id"]
    assert error["message"].startswith("Variable '$id'") and fragment in error["message"]
    assert "(used by contract(id:))" in error["message"] and "INTERNAL" not in response.text
    assert error["locations"] == [{"line": 1, "column": 7}]


async def test_an_integer_id_is_coerced_as_graphql_specifies(api, keys):
    # GraphQL's ID accepts integers as input; 5 is no contract id, so there is no such contract.
    response = await post(api, keys["finance"], {"query": CONTRACT_BY_ID, "variables": {"id": 5}})
    assert response.status_code == 200 and response.json()["data"] == {"contract": None}


async def test_wrong_scalar_types_are_bad_user_input(api, keys):
    query = "query($first: Int!, $after: String) { contracts(first: $first, after: $after) { id } }"
    body = refused(
        await post(api, keys["finance"], {"query": query, "variables": {"first": 2**40, "after": ["x"]}}),
        "BAD_USER_INPUT",
    )
    assert sorted(e["loc"][1] for e in body["errors"]) == ["after", "first"]
    literal = refused(
        await post(api, keys["finance"], {"query": "{ contracts(first: 99999999999) { id } }"}),
        "GRAPHQL_VALIDATION_FAILED",
    )
    assert "32-bit" in literal["errors"][0]["message"]


@pytest.mark.parametrize(
    ("variables", "loc"),
    [
        ({"after": "open\u0000"}, ["variables", "after"]),
        ({"after": "a\u001bb"}, ["variables", "after"]),
        ({"after": "ok", "extra": {"k\u0000": 1}}, ["variables", "extra", "k\u0000"]),
        ({"after": "ok", "extra": [["x", "\u0007"]]}, ["variables", "extra", 0, 1]),
    ],
    ids=["nul", "escape", "key", "nested"],
)
async def test_control_characters_in_variables_are_refused_up_front(api, keys, variables, loc):
    query = "query($after: String) { contracts(after: $after) { id } }"
    body = refused(await post(api, keys["finance"], {"query": query, "variables": variables}), "BAD_USER_INPUT")
    assert body["errors"][0]["loc"] == loc and "control characters" in body["errors"][0]["message"]


async def test_tabs_and_newlines_in_variables_are_fine(api, keys):
    response = await post(api, keys["finance"], {"query": CONTRACT_BY_ID, "variables": {"id": "a\tb\r\nc"}})
    assert response.status_code == 200 and response.json() == {"data": {"contract": None}}


async def test_control_characters_in_string_literals_are_refused(api, keys):
    body = refused(
        await post(api, keys["finance"], {"query": '{ contracts(status: "open\\u0000") { id } }'}), "BAD_USER_INPUT"
    )
    assert body["errors"][0]["message"] == "argument 'status' of field 'contracts' must not contain control characters"
    block = '{ contracts(status: """a\u0001b""") { id } }'
    assert (await post(api, keys["finance"], {"query": block})).status_code == 400


async def test_variables_with_too_many_values_are_refused(api, keys):
    query = "query($after: String) { contracts(after: $after) { id } }"
    huge = {"after": "x", "spare": list(range(MAX_VARIABLE_VALUES + 1))}
    body = refused(await post(api, keys["finance"], {"query": query, "variables": huge}), "GRAPHQL_LIMIT_EXCEEDED")
    assert body["errors"][0]["loc"] == ["variables"]


async def test_deeply_nested_variables_are_a_clean_4xx(api, keys):
    deep: Any = "x"
    for _ in range(500):
        deep = [deep]
    body = refused(
        await post(api, keys["finance"], {"query": CONTRACT_BY_ID, "variables": {"id": deep}}), "BAD_USER_INPUT"
    )
    assert body["errors"][0]["loc"] == ["variables", "id"]
    too_deep = b'{"query": "{ viewer { name } }", "variables": {"v": ' + b"[" * 3000 + b"]" * 3000 + b"}}"
    response = await api.post(
        "/graphql", headers={**auth(keys["finance"]), "content-type": "application/json"}, content=too_deep
    )
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"


# --------------------------------------------------------------------------- operation and envelope


@pytest.mark.parametrize("name", ["Nope", "", "q"], ids=["unknown", "empty", "case"])
async def test_an_operation_name_the_document_lacks_is_a_400(api, keys, name):
    body = refused(
        await post(api, keys["admin"], {"query": "query Q { viewer { name } }", "operationName": name}),
        "GRAPHQL_VALIDATION_FAILED",
    )
    assert body["errors"][0]["loc"] == ["operationName"]


async def test_the_named_operation_runs_and_only_fragments_is_a_400(api, keys):
    two = "query A { viewer { name } } query B { viewer { role } }"
    response = await post(api, keys["admin"], {"query": two, "operationName": "B"})
    assert response.status_code == 200 and response.json() == {"data": {"viewer": {"role": "admin"}}}
    anonymous_pair = "{ viewer { name } } { viewer { role } }"
    refused(await post(api, keys["admin"], {"query": anonymous_pair}), "GRAPHQL_VALIDATION_FAILED")
    only_fragments = "fragment F on Viewer { name }"
    refused(await post(api, keys["admin"], {"query": only_fragments}), "GRAPHQL_VALIDATION_FAILED")
    schema_text = "type Foo { a: Int }"
    refused(await post(api, keys["admin"], {"query": schema_text}), "GRAPHQL_VALIDATION_FAILED")


@pytest.mark.parametrize(
    "body",
    [
        {"query": 5},
        {"query": "{ viewer { name } }", "variables": []},
        {"query": "{ viewer { name } }", "variables": "{}"},
        {"query": "{ viewer { name } }", "operationName": 5},
        {"query": "{ viewer { name } }", "operationName": ["Q"]},
        {"documentId": 5},
        {"documentId": {"sha256": "x"}},
        {"query": "{ viewer { name } }", "extensions": []},
        {"variables": {}},
        {"query": "   "},
    ],
)
async def test_a_malformed_envelope_is_a_422(api, keys, body):
    for key in ("admin", "customer"):
        response = await post(api, keys[key], body)
        assert response.status_code == 422 or (key == "customer" and response.status_code == 403), response.text
        assert response.headers["content-type"] == "application/problem+json"


async def test_not_an_object_is_a_422(api, keys):
    for raw in (b"[]", b'"query"', b"null", b"{nope", b"\xff"):
        response = await api.post(
            "/graphql", headers={**auth(keys["admin"]), "content-type": "application/json"}, content=raw
        )
        assert response.status_code == 422, raw


async def test_a_customer_persisted_operation_gets_the_same_checks(api, keys):
    document_id = "sha256:" + hashlib.sha256(PORTAL.read_bytes()).hexdigest()
    bad = {"documentId": document_id, "variables": {"id": {"$ne": None}}}
    body = refused(await post(api, keys["customer"], bad), "BAD_USER_INPUT")
    assert body["errors"][0]["loc"] == ["variables", "id"]
    nul = {"documentId": document_id, "variables": {"id": "\u0000"}}
    refused(await post(api, keys["customer"], nul), "BAD_USER_INPUT")


# ---------------------------------------------------------------------------- execution results


async def test_domain_errors_keep_their_code_in_a_200(api, keys):
    await register(api, keys["integration"], acme())
    # An integration key may read contracts but not billing: the field is refused, the rest answered.
    response = await post(api, keys["integration"], {"query": "{ contracts { number billedAmount } }"})
    assert response.status_code == 200
    payload = response.json()
    assert payload["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert payload["errors"][0]["path"] == ["contracts", 0, "billedAmount"]


async def test_production_names_no_field_it_was_not_asked_for(settings, sandbox_transport, api, keys):
    typo = {"query": "{ contrcts { id } }"}
    dev = refused(await post(api, keys["admin"], typo), "GRAPHQL_VALIDATION_FAILED")
    assert "Did you mean 'contracts'" in dev["errors"][0]["message"]
    app = create_app(settings.model_copy(update={"env": "production"}), sandbox_transport)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://psbridge") as client:
            production = refused(await post(client, keys["admin"], typo), "GRAPHQL_VALIDATION_FAILED")
    # With introspection off, suggestions would reveal the schema one field at a time.
    assert production["errors"][0]["message"] == "Cannot query field 'contrcts' on type 'Query'."
