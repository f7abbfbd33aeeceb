"""Hostile input through the real app: money strings, minor units, business dates, milestone cycles,
415 for bodies that are not JSON, the public index page, and one rate-limit budget per client."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.content_type import JsonBodyMiddleware
from app.index_page import prefers_html
from tests.factories import CONTRACTS, acme, auth
from tests.integration.test_http_contract import app_client, assert_problem, locs

ACCEPTANCE = "/process/v1/milestones/{contract_id}/{key}/acceptance"
BILLING_RUNS = "/process/v1/billing-runs"
INVOICES = "/process/v1/invoices"


def milestone(key: str, amount: str = "100000.00", depends_on: list[str] | None = None) -> dict[str, Any]:
    return {
        "key": key,
        "name": f"Milestone {key}",
        "amount": amount,
        "due_date": "2026-06-30",
        "depends_on": depends_on or [],
    }


async def _refused(api: httpx.AsyncClient, key: str, body: dict[str, Any], path: str = CONTRACTS) -> list[Any]:
    response = await api.post(path, json=body, headers=auth(key))
    problem = assert_problem(response, 422, "VALIDATION_FAILED")
    return locs(problem)


# --- 1. money strings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    ["1E+999999999", "1_000", "1E+2", " 12 ", "\u0661\u0662\u0663", "300000.00\n", "+300000", "1" * 5000, "-0"],
)
async def test_a_hostile_money_string_is_a_422_naming_the_field(api, keys, amount):
    assert ["body", "total_value"] in await _refused(api, keys["integration"], acme(total_value=amount))


async def test_a_hostile_amount_deep_in_the_body_is_named_there(api, keys):
    body = acme(milestones=[milestone("M1", "1E+999999999")], total_value="100000.00")
    assert await _refused(api, keys["integration"], body) == [["body", "milestones", 0, "amount"]]
    body = acme(rate_card=[{"role": "consultant", "rate": "-1.00", "effective_from": "2026-01-05"}])
    assert await _refused(api, keys["integration"], body) == [["body", "rate_card", 0, "rate"]]


# --- 2. currency minor units -------------------------------------------------------------------


async def test_amounts_finer_than_the_currency_are_each_named_in_one_422(api, keys):
    body = acme(
        total_value="300000.005",
        time_cap="1000.001",
        rate_card=[{"role": "consultant", "rate": "200.125", "effective_from": "2026-01-05"}],
        reimbursable_expenses=[{"category": "travel", "cap": "15000.0050"}],
        milestones=[milestone("M1", "100000.00"), milestone("M2", "200000.005", ["M1"])],
    )
    response = await api.post(CONTRACTS, json=body, headers=auth(keys["integration"]))
    problem = assert_problem(response, 422, "VALIDATION_FAILED")
    assert locs(problem) == [
        ["body", "total_value"],
        ["body", "time_cap"],
        ["body", "rate_card", 0, "rate"],
        ["body", "reimbursable_expenses", 0, "cap"],
        ["body", "milestones", 1, "amount"],
    ]
    assert all("USD" in e["msg"] and "2 decimal places" in e["msg"] for e in problem["errors"])


async def test_trailing_zeros_fit_any_currency(api, keys):
    jpy = acme(currency="JPY", total_value="300000.00", milestones=[milestone("M1", "300000.000")], rate_card=[])
    assert (await api.post(CONTRACTS, json=jpy, headers=auth(keys["integration"]))).status_code == 201
    half_yen = acme(external_id="JPY-2", currency="JPY", total_value="100.5", milestones=[milestone("M1", "100.5")])
    assert await _refused(api, keys["integration"], half_yen) == [
        ["body", "total_value"],
        ["body", "milestones", 0, "amount"],
    ]
    fils = acme(external_id="KWD-1", currency="KWD", total_value="1.0005", milestones=[milestone("M1", "1.0005")])
    assert ["body", "total_value"] in await _refused(api, keys["integration"], fils)


# --- 3. business dates -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"start_date": "2026-01-05T00:00:00"}, ["body", "start_date"]),
        ({"start_date": "1969-12-31"}, ["body", "start_date"]),
        ({"end_date": "2200-01-01"}, ["body", "end_date"]),
        ({"end_date": "9999-12-31"}, ["body", "end_date"]),
        ({"start_date": 1767571200}, ["body", "start_date"]),
        ({"signed_at": "2026-01-02T10:00:00"}, ["body", "signed_at"]),
        ({"signed_at": "2026-01-02"}, ["body", "signed_at"]),
        ({"signed_at": "1700000000"}, ["body", "signed_at"]),
        ({"signed_at": "9999-12-31T23:59:59Z"}, ["body", "signed_at"]),
        (
            {"rate_card": [{"role": "consultant", "rate": "200.00", "effective_from": "0001-01-01"}]},
            ["body", "rate_card", 0, "effective_from"],
        ),
        (
            {"milestones": [{**milestone("M1", "300000.00"), "due_date": "2026-03-31T00:00:00Z"}]},
            ["body", "milestones", 0, "due_date"],
        ),
    ],
)
async def test_contract_dates_are_business_dates(api, keys, changes, loc):
    assert loc in await _refused(api, keys["integration"], acme(**changes))


async def test_an_acceptance_dated_beyond_2199_is_refused_and_nothing_is_invoiced(api, keys):
    registered = await api.post(CONTRACTS, json=acme(), headers=auth(keys["integration"]))
    contract_id = registered.json()["id"]
    path = ACCEPTANCE.format(contract_id=contract_id, key="M1")
    for stamp in ("9999-12-31T23:59:59Z", "2026-03-28T16:00:00", "2026-03-28", "1969-12-31T23:59:59Z"):
        body = {"accepted_at": stamp, "accepted_by": "client PM"}
        assert await _refused(api, keys["integration"], body, path) == [["body", "accepted_at"]], stamp
    contract = (await api.get(f"{CONTRACTS}/{contract_id}", headers=auth(keys["admin"]))).json()
    assert {m["key"]: m["status"] for m in contract["milestones"]}["M1"] == "pending"


@pytest.mark.parametrize("as_of", ["2200-01-01", "1969-12-31", "2026-03-31T00:00:00", "20260331", 20260331])
async def test_a_billing_run_as_of_is_a_business_date(api, keys, as_of):
    assert await _refused(api, keys["finance"], {"as_of": as_of}, BILLING_RUNS) == [["body", "as_of"]]


# --- 4. milestone dependency cycles ------------------------------------------------------------


async def test_a_dependency_cycle_is_a_422_naming_the_keys(api, keys):
    body = acme(
        milestones=[
            milestone("M1", "100000.00", ["M2"]),
            milestone("M2", "100000.00", ["M1"]),
            milestone("M3", "100000.00", ["M3"]),
            milestone("M4", "0.01", ["M7"]),
        ],
        total_value="300000.01",
    )
    response = await api.post(CONTRACTS, json=body, headers=auth(keys["integration"]))
    errors = assert_problem(response, 422, "VALIDATION_FAILED")["errors"]
    assert [(e["loc"], e["msg"]) for e in errors] == [
        (["body", "milestones", 2, "depends_on"], "milestone M3 depends on itself (M3 → M3)"),
        (["body", "milestones", 3, "depends_on"], "milestone M4 depends on unknown milestones: M7"),
        (["body", "milestones", 0, "depends_on"], "milestone dependencies form a cycle: M1 → M2 → M1"),
    ]
    listed = await api.get(CONTRACTS, headers=auth(keys["admin"]))
    assert listed.json()["items"] == []


async def test_a_chain_of_500_milestones_closed_into_a_cycle_is_a_422_not_a_500(api, keys):
    keys_ = [f"M{i}" for i in range(500)]
    milestones = [milestone(k, "1.00", [keys_[(i + 1) % 500]]) for i, k in enumerate(keys_)]
    body = acme(milestones=milestones, total_value="500.00")
    response = await api.post(CONTRACTS, json=body, headers=auth(keys["integration"]))
    [error] = assert_problem(response, 422, "VALIDATION_FAILED")["errors"]
    assert error["loc"] == ["body", "milestones", 0, "depends_on"] and error["msg"].endswith("M499 → M0")


# --- 5. 415 for bodies that are not JSON -------------------------------------------------------


def _unsupported(response: httpx.Response) -> dict[str, Any]:
    problem = assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "application/json" in problem["detail"]
    assert problem["errors"][0]["loc"][0] == "header"
    return problem


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/jsonx",
        "application/json-patch",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/merge-patch+json",
        "application/problem+json",
        "json",
        "",
        "application/json; charset=latin-1",
        "application/json; charset=utf-16",
    ],
)
async def test_a_body_that_is_not_declared_json_is_415(api, keys, content_type):
    raw = b'{"as_of": "2026-03-31"}'
    headers = {**auth(keys["admin"]), "Content-Type": content_type}
    for path in (CONTRACTS, BILLING_RUNS, "/graphql"):
        _unsupported(await api.post(path, content=raw, headers=headers))


async def test_a_body_without_a_content_type_is_415(api, keys):
    raw = b'{"query": "{ __typename }"}'
    for path in (CONTRACTS, "/graphql"):
        problem = _unsupported(await api.post(path, content=raw, headers=auth(keys["admin"])))
        assert problem["errors"] == [
            {"loc": ["header", "Content-Type"], "msg": "is missing", "code": "UNSUPPORTED_MEDIA_TYPE"}
        ]

    async def chunks() -> AsyncIterator[bytes]:
        yield raw

    streamed = await api.post("/graphql", content=chunks(), headers=auth(keys["admin"]))
    assert streamed.request.headers.get("transfer-encoding") == "chunked"
    _unsupported(streamed)


async def test_form_encoded_and_repeated_or_encoded_bodies_are_415(api, keys):
    _unsupported(await api.post(CONTRACTS, data={"source": "salesforce"}, headers=auth(keys["admin"])))
    twice = [("Content-Type", "application/json"), ("Content-Type", "text/plain"), *auth(keys["admin"]).items()]
    _unsupported(await api.post(CONTRACTS, content=b"{}", headers=twice))
    gzipped = await api.post(
        CONTRACTS,
        content=b"\x1f\x8b\x08\x00",
        headers={**auth(keys["admin"]), "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    problem = _unsupported(gzipped)
    assert problem["errors"][0]["loc"] == ["header", "Content-Encoding"]
    assert gzipped.headers["accept-encoding"] == "identity"


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", 'Application/JSON;Charset="UTF-8"']
)
async def test_json_with_or_without_parameters_is_accepted(api, keys, content_type):
    headers = {**auth(keys["integration"]), "Content-Type": content_type}
    body = acme(external_id=f"CT-{uuid.uuid4().hex[:8]}")
    assert (await api.post(CONTRACTS, content=json.dumps(body).encode(), headers=headers)).status_code == 201
    graphql = await api.post("/graphql", content=b'{"query": "{ __typename }"}', headers=headers)
    assert graphql.status_code == 200, graphql.text


async def test_requests_without_a_body_need_no_content_type(api, keys):
    headers = auth(keys["admin"])
    retry = await api.post(f"{INVOICES}/{uuid.uuid4()}/retry", headers=headers)
    assert_problem(retry, 404)
    assert "content-type" not in retry.request.headers
    acknowledge = await api.post(f"/process/v1/exceptions/{uuid.uuid4()}/acknowledge", headers=headers)
    assert_problem(acknowledge, 404)
    assert (await api.get(CONTRACTS, headers=headers)).status_code == 200
    # an empty body with a wrong type is still no body
    empty = await api.post(
        f"{INVOICES}/{uuid.uuid4()}/retry", content=b"", headers={**headers, "Content-Type": "text/plain"}
    )
    assert_problem(empty, 404)


async def test_authentication_comes_first_and_a_415_is_never_replayed(api, keys):
    # an anonymous caller learns nothing about media types: 401 first
    assert_problem(await api.post(CONTRACTS, content=b"x", headers={"Content-Type": "text/plain"}), 401, "UNAUTHORIZED")
    headers = {**auth(keys["integration"]), "Idempotency-Key": f"ct-{uuid.uuid4().hex}"}
    body = acme(external_id=f"CT-{uuid.uuid4().hex[:8]}")
    raw = json.dumps(body).encode()
    _unsupported(await api.post(CONTRACTS, content=raw, headers={**headers, "Content-Type": "text/plain"}))
    # the 415 claimed no idempotency row: the corrected request runs instead of replaying the refusal
    fixed = await api.post(CONTRACTS, content=raw, headers={**headers, "Content-Type": "application/json"})
    assert fixed.status_code == 201 and "idempotent-replayed" not in fixed.headers


async def _run_asgi(messages: list[dict[str, Any]], headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """The middleware alone, fed messages as a server would (HTTP/2 may send no framing headers)."""
    received: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            received.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"".join(received)})

    pending = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/graphql", "headers": headers, "query_string": b""}
    await JsonBodyMiddleware(app)(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def test_a_body_without_framing_headers_is_judged_by_its_bytes():
    parts = [
        {"type": "http.request", "body": b"", "more_body": True},
        {"type": "http.request", "body": b'{"a"', "more_body": True},
        {"type": "http.request", "body": b": 1}", "more_body": False},
    ]
    status, body = await _run_asgi(parts, [(b"content-type", b"text/plain")])
    assert status == 415 and b"UNSUPPORTED_MEDIA_TYPE" in body
    # the same bytes declared as JSON reach the app whole, in order
    assert await _run_asgi(parts, [(b"content-type", b"application/json")]) == (200, b'{"a": 1}')
    # and no body at all needs no type
    assert await _run_asgi([{"type": "http.request", "body": b"", "more_body": False}], []) == (200, b"")


async def test_an_odd_content_length_counts_as_a_body_not_a_crash():
    message = [{"type": "http.request", "body": b"{}", "more_body": False}]
    for length in (b"\xb2", b"-1", b"2, 2", b"0x2"):  # "\xb2" is latin-1 "²", a digit to str.isdigit()
        status, _ = await _run_asgi(message, [(b"content-length", length), (b"content-type", b"text/plain")])
        assert status == 415, length
        assert await _run_asgi(message, [(b"content-length", length), (b"content-type", b"application/json")]) == (
            200,
            b"{}",
        )


# --- 6. GET / ----------------------------------------------------------------------------------


async def test_the_index_answers_json_without_a_key(api):
    for headers in ({}, {"Accept": "application/json"}, {"Accept": "*/*"}, {"Accept": "text/html;q=0.5, */*"}):
        response = await api.get("/", headers=headers)
        assert response.status_code == 200 and response.headers["content-type"] == "application/json"
        assert "accept" in response.headers["vary"].lower()
        body = response.json()
        assert body["name"] == "psbridge"
        hrefs = {name: link["href"] for name, link in body["links"].items()}
        assert hrefs == {
            "docs": "/docs",
            "openapi": "/openapi.json",
            "graphql": "/graphql",
            "dashboard": "/dashboard",
            "health": "/healthz",
            "readiness": "/readyz",
            "metrics": "/metrics",
        }
        assert body["links"]["metrics"]["key_required"] is True
    for name, href in hrefs.items():
        status = (await api.get(href)).status_code
        assert status == (401 if name == "metrics" else 200), href
    assert (await api.head("/")).status_code == 200


async def test_the_index_is_a_small_strict_html_page_for_browsers(api):
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
    response = await api.get("/", headers={"Accept": browser})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    hrefs = re.findall(r'href="([^"]+)"', html)
    assert {"/docs", "/openapi.json", "/graphql", "/dashboard", "/healthz", "/readyz", "/metrics"} <= set(hrefs)
    assert all(h.startswith("/") and not h.startswith("//") for h in hrefs)
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert not re.search(r"\son[a-z]+\s*=", html) and "style=" not in html  # no inline handlers or styles
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp and "script-src" not in csp
    [style] = re.findall(r"<style>(.*?)</style>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (None, False),
        ("", False),
        ("*/*", False),
        ("application/json", False),
        ("text/html", True),
        ("text/*", True),
        ("text/html;q=0.9, application/json", False),
        ("text/html, application/json;q=0.5", True),
        ("text/html;q=0", False),
        ("text/html;q=abc", False),  # a malformed weight is not a preference
        ("text/html;q=nan", False),
        ("text/html;q=2", False),
        ("TEXT/HTML", True),
        ("image/png", False),
        ("text/*;q=0.2, text/html;q=0", False),  # the most specific range decides
    ],
)
def test_html_only_when_the_client_prefers_it(accept, html):
    assert prefers_html(accept) is html


async def test_only_the_root_itself_is_public(api):
    for path in (CONTRACTS, "/nothing-here", "/index.html", "/process/v1/", "/metrics"):
        assert_problem(await api.get(path), 401, "UNAUTHORIZED")


# --- 7. one rate-limit budget per client across the API ----------------------------------------


async def test_a_throttled_client_is_throttled_everywhere_and_others_are_not(settings, sandbox_transport, services):
    from app.auth import create_client

    async with services.db.transaction() as conn:
        _, greedy = await create_client(conn, f"rl-greedy-{uuid.uuid4().hex[:6]}", "finance")
        _, polite = await create_client(conn, f"rl-polite-{uuid.uuid4().hex[:6]}", "finance")
    limited = settings.model_copy(update={"default_rate_limit": "3/minute"})
    async with app_client(limited, sandbox_transport) as client:
        # the budget is shared: two routes spend it together
        assert (await client.get(CONTRACTS, headers=auth(greedy))).status_code == 200
        assert (await client.get(INVOICES, headers=auth(greedy))).status_code == 200
        assert (await client.get(CONTRACTS, headers=auth(greedy))).status_code == 200
        for path in (CONTRACTS, INVOICES, "/process/v1/exceptions"):
            refused = await client.get(path, headers=auth(greedy))
            assert_problem(refused, 429, "RATE_LIMITED")
            assert 1 <= int(refused.headers["retry-after"]) <= 61, path
        post = await client.post(BILLING_RUNS, json={"as_of": "2026-03-31"}, headers=auth(greedy))
        assert_problem(post, 429, "RATE_LIMITED")
        # another client keeps its own full budget, on every route
        assert (await client.get(INVOICES, headers=auth(polite))).status_code == 200
        assert (await client.get(CONTRACTS, headers=auth(polite))).status_code == 200
        # public pages are never limited
        assert (await client.get("/")).status_code == 200
