"""The HTTP conventions of docs/api.md, through the app: auth, problem+json, validation, limits, correlation ids."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.main import create_app
from app.settings import Settings
from tests.factories import CONTRACTS, acme, auth

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == status and isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["type"], str) and isinstance(body["title"], str)
    if code is not None:
        assert body["code"] == code, body
    return body


def locs(body: dict[str, Any]) -> list[list[str | int]]:
    assert body["errors"], body
    assert all({"loc", "msg", "code"} <= e.keys() and e["msg"] for e in body["errors"]), body
    return [e["loc"] for e in body["errors"]]


@asynccontextmanager
async def app_client(
    settings: Settings, transport: httpx.AsyncBaseTransport, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """A second app on other settings (small limits), under its real lifespan; ``client.app`` is the app."""
    app = create_app(settings, transport)
    async with LifespanManager(app) as manager:
        asgi = httpx.ASGITransport(app=manager.app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=asgi, base_url="http://psbridge") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


class RecordingTransport(httpx.AsyncBaseTransport):
    """Delegates to the sandbox, remembering every outbound request's URL and headers."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[tuple[str, httpx.Headers]] = []
        self.bodies: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((str(request.url), httpx.Headers(request.headers)))
        self.bodies.append(await request.aread())
        return await self.inner.handle_async_request(request)


# --- 1. authentication and roles ---------------------------------------------------------------


async def test_no_key_or_an_unknown_key_is_401_with_www_authenticate(api, keys):
    for headers in ({}, auth("psb_not-a-real-key"), {"Authorization": "Basic dXNlcjpwdw=="}, {"Authorization": ""}):
        response = await api.get(CONTRACTS, headers=headers)
        assert_problem(response, 401, "UNAUTHORIZED")
        assert response.headers["www-authenticate"].lower().startswith("bearer")
    # a POST is refused before its body is looked at
    assert_problem(await api.post(CONTRACTS, json=acme()), 401, "UNAUTHORIZED")
    assert_problem(await api.post(CONTRACTS, content=b"{not json"), 401, "UNAUTHORIZED")


async def test_a_role_without_the_right_is_403(api, keys):
    assert_problem(await api.post(CONTRACTS, json=acme(), headers=auth(keys["bi"])), 403, "FORBIDDEN")
    run = await api.post("/process/v1/billing-runs", json={"as_of": "2026-03-31"}, headers=auth(keys["customer"]))
    assert_problem(run, 403, "FORBIDDEN")
    entity = {"name": "X", "country": "US", "functional_currency": "USD", "allowed_currencies": ["USD"]}
    put = await api.put("/process/v1/legal-entities/US09", json=entity, headers=auth(keys["finance"]))
    assert_problem(put, 403, "FORBIDDEN")
    assert_problem(await api.get("/process/v1/exceptions", headers=auth(keys["customer"])), 403, "FORBIDDEN")
    # nothing was written by the refused requests
    listed = await api.get(CONTRACTS, headers=auth(keys["admin"]))
    assert listed.status_code == 200 and listed.json()["items"] == []


async def test_health_and_readiness_need_no_key(api):
    health = await api.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    ready = await api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"database": True, "redis": True},
        "circuits": {"erp": "closed", "tax": "closed"},
    }
    # browsers ask for an icon on every page: no content, rather than a 401 in their console
    icon = await api.get("/favicon.ico")
    assert icon.status_code == 204 and not icon.content


# --- 2. 404 and 405 ----------------------------------------------------------------------------


async def test_unknown_paths_and_ids_are_404_problems(api, keys):
    headers = auth(keys["admin"])
    assert_problem(await api.get("/process/v1/nothing-here", headers=headers), 404, "NOT_FOUND")
    assert_problem(await api.get("/nothing", headers=headers), 404, "NOT_FOUND")
    assert_problem(await api.get("/static/nothing.js"), 404, "NOT_FOUND")
    for path in (
        f"{CONTRACTS}/{uuid.uuid4()}",
        f"{CONTRACTS}/not-a-uuid",
        f"{CONTRACTS}/12345",
        f"{CONTRACTS}/{uuid.uuid4().hex}x",
        f"/process/v1/invoices/{uuid.uuid4()}",
        "/process/v1/invoices/not-a-uuid",
        f"/process/v1/exceptions/{uuid.uuid4()}",
        "/process/v1/exceptions/%00",
    ):
        assert "code" in assert_problem(await api.get(path, headers=headers), 404)
    accept = {"accepted_at": "2026-03-28T16:00:00Z"}
    for contract in (str(uuid.uuid4()), "not-a-uuid"):
        response = await api.post(f"/process/v1/milestones/{contract}/M1/acceptance", json=accept, headers=headers)
        assert_problem(response, 404)
    retry = await api.post(f"/process/v1/invoices/{uuid.uuid4()}/retry", headers=headers)
    assert_problem(retry, 404)


async def test_a_wrong_method_is_405_with_allow(api, keys):
    headers = auth(keys["admin"])
    for method, path in (
        ("DELETE", CONTRACTS),
        ("PUT", CONTRACTS),
        ("PATCH", f"{CONTRACTS}/{uuid.uuid4()}"),
        ("POST", "/process/v1/invoices"),
        ("GET", "/process/v1/billing-runs"),
    ):
        response = await api.request(method, path, headers=headers)
        assert_problem(response, 405, "METHOD_NOT_ALLOWED")
        assert response.headers["allow"]


# --- 3. validation -----------------------------------------------------------------------------


async def test_invalid_json_and_empty_bodies_are_422(api, keys):
    headers = {**auth(keys["integration"]), "Content-Type": "application/json"}
    for raw in (b"{", b'{"source": }', b"not json", b'{"a": 1}}', "\xff\xfe{}".encode("latin-1")):
        body = assert_problem(await api.post(CONTRACTS, content=raw, headers=headers), 422, "VALIDATION_FAILED")
        assert all(loc[0] == "body" for loc in locs(body))
    for raw in (b"", b"   \n"):
        body = assert_problem(await api.post(CONTRACTS, content=raw, headers=headers), 422, "VALIDATION_FAILED")
        assert locs(body) == [["body"]]
    for value in ([], "a string", 42, None):
        body = assert_problem(await api.post(CONTRACTS, json=value, headers=headers), 422, "VALIDATION_FAILED")
        assert locs(body) == [["body"]]


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"source": None}, ["body", "source"]),
        ({"currency": 840}, ["body", "currency"]),
        ({"total_value": 300000.0}, ["body", "total_value"]),
        ({"total_value": 300000}, ["body", "total_value"]),
        ({"total_value": "three hundred"}, ["body", "total_value"]),
        ({"total_value": "NaN"}, ["body", "total_value"]),
        ({"total_value": "-5.00"}, ["body", "total_value"]),
        ({"total_value": True}, ["body", "total_value"]),
        ({"start_date": "2026-13-01"}, ["body", "start_date"]),
        ({"start_date": "05/01/2026"}, ["body", "start_date"]),
        ({"end_date": 20261218}, ["body", "end_date"]),
        ({"signed_at": "yesterday"}, ["body", "signed_at"]),
        ({"currency": "usd"}, ["body", "currency"]),
        ({"currency": "XYZ"}, ["body", "currency"]),
        ({"currency": "US"}, ["body", "currency"]),
        ({"billing_model": "retainer"}, ["body", "billing_model"]),
        ({"customer": "ACME-001"}, ["body", "customer"]),
        ({"customer": {"external_id": "ACME-001"}}, ["body", "customer", "name"]),
        ({"unexpected": 1}, ["body", "unexpected"]),
        ({"tax": {"jurisdiction": "US-NY", "vat": "1"}}, ["body", "tax", "vat"]),
        ({"rate_card": [{"role": "consultant", "rate": 200, "effective_from": "2026-01-05"}]}, None),
        ({"milestones": [{"key": "M1", "name": "D", "amount": 1.5}]}, ["body", "milestones", 0, "amount"]),
        ({"milestones": "M1"}, ["body", "milestones"]),
    ],
)
async def test_field_errors_name_the_field(api, keys, changes, loc):
    body = acme(**changes)
    response = await api.post(CONTRACTS, json=body, headers=auth(keys["integration"]))
    problem = assert_problem(response, 422, "VALIDATION_FAILED")
    found = locs(problem)
    if loc is None:
        loc = ["body", "rate_card", 0, "rate"]
    assert loc in found, found


async def test_money_as_a_json_number_is_refused_with_a_hint(api, keys):
    response = await api.post(CONTRACTS, json=acme(total_value=300000.0), headers=auth(keys["integration"]))
    problem = assert_problem(response, 422, "VALIDATION_FAILED")
    [error] = problem["errors"]
    assert error["loc"] == ["body", "total_value"] and "decimal string" in error["msg"]


async def test_missing_fields_are_each_named(api, keys):
    body = acme()
    for name in ("source", "currency", "start_date"):
        del body[name]
    response = await api.post(CONTRACTS, json=body, headers=auth(keys["integration"]))
    found = locs(assert_problem(response, 422, "VALIDATION_FAILED"))
    assert sorted(map(tuple, found)) == [("body", "currency"), ("body", "source"), ("body", "start_date")]


async def test_end_before_start_is_422(api, keys):
    response = await api.post(CONTRACTS, json=acme(end_date="2025-12-31"), headers=auth(keys["integration"]))
    problem = assert_problem(response, 422, "VALIDATION_FAILED")
    assert ["body", "end_date"] in locs(problem)


async def test_end_before_start_names_end_date(api, keys):
    response = await api.post(CONTRACTS, json=acme(end_date="2025-12-31"), headers=auth(keys["integration"]))
    assert ["body", "end_date"] in locs(assert_problem(response, 422, "VALIDATION_FAILED"))


async def test_bad_query_parameters_are_422_naming_the_parameter(api, keys):
    headers = auth(keys["admin"])
    for path, loc in (
        (f"{CONTRACTS}?limit=0", ["query", "limit"]),
        (f"{CONTRACTS}?limit=abc", ["query", "limit"]),
        (f"{CONTRACTS}?status=deleted", ["query", "status"]),
        ("/process/v1/invoices?contract_id=nope", ["query", "contract_id"]),
        ("/process/v1/exceptions?queue=everything", ["query", "queue"]),
    ):
        assert loc in locs(assert_problem(await api.get(path, headers=headers), 422)), path
    bad_cursor = await api.get(f"{CONTRACTS}?after=%%%not-a-cursor", headers=headers)
    assert_problem(bad_cursor, 422)


async def test_nul_characters_are_refused_not_a_500(api, keys):
    headers = auth(keys["admin"])
    body = acme(number="SOW\u00002026")
    response = await api.post(CONTRACTS, json=body, headers=headers)
    assert ["body", "number"] in locs(assert_problem(response, 422, "VALIDATION_FAILED"))
    nested = acme(customer={"external_id": "ACME-001", "name": "Acme\u0000"})
    response = await api.post(CONTRACTS, json=nested, headers=headers)
    assert ["body", "customer", "name"] in locs(assert_problem(response, 422, "VALIDATION_FAILED"))
    for path in (f"{CONTRACTS}?customer=%00", "/process/v1/exceptions?code=a%00b", f"{CONTRACTS}?customer=a%1Fb"):
        assert_problem(await api.get(path, headers=headers), 422)
    for changes, loc in (
        ({"customer": {"external_id": "ACME-001\u001f", "name": "Acme"}}, ["body", "customer", "external_id"]),
        ({"number": "SOW\u0007"}, ["body", "number"]),
        ({"rate_card": [{"role": "con\u001bsultant", "rate": "1.00", "effective_from": "2026-01-05"}]}, None),
    ):
        response = await api.post(CONTRACTS, json=acme(**changes), headers=headers)
        assert (loc or ["body", "rate_card", 0, "role"]) in locs(assert_problem(response, 422, "VALIDATION_FAILED"))
    # tabs and newlines are text, not control garbage
    fine = acme(number="SOW 2026\t014", document={"uri": "docs://x\ny", "sha256": None})
    assert (await api.post(CONTRACTS, json=fine, headers=headers)).status_code == 201
    accept = {"accepted_at": "2026-03-28T16:00:00Z"}
    path = f"/process/v1/milestones/{uuid.uuid4()}/M%001/acceptance"
    assert_problem(await api.post(path, json=accept, headers=headers), 404)
    raw = b'{"as_of": "2026-03-31", "legal_entity": "\\ud800"}'
    response = await api.post(
        "/process/v1/billing-runs", content=raw, headers={**headers, "Content-Type": "application/json"}
    )
    assert response.status_code < 500 and response.headers["content-type"].startswith("application/")


async def test_a_model_validator_can_name_its_field():
    from datetime import date

    from pydantic import BaseModel, model_validator
    from starlette.requests import Request

    from app.errors import ValidationFailed, field_error
    from app.http import parse_body

    class Term(BaseModel):
        start: date
        end: date

        @model_validator(mode="after")
        def _ordered(self) -> Term:
            if self.end < self.start:
                raise field_error("end", "must not be before start")
            return self

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b'{"start": "2026-02-01", "end": "2026-01-01"}', "more_body": False}

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    with pytest.raises(ValidationFailed) as raised:
        await parse_body(request, Term)
    assert [e.as_dict() for e in raised.value.errors] == [
        {"loc": ["body", "end"], "msg": "must not be before start", "code": "INVALID_VALUE"}
    ]


async def test_times_that_overflow_utc_are_422_not_500(api, keys):
    contract_id = (await api.post(CONTRACTS, json=acme(), headers=auth(keys["integration"]))).json()["id"]
    for stamp in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        response = await api.post(
            f"/process/v1/milestones/{contract_id}/M1/acceptance",
            json={"accepted_at": stamp},
            headers=auth(keys["integration"]),
        )
        assert ["body", "accepted_at"] in locs(assert_problem(response, 422, "VALIDATION_FAILED"))
    response = await api.post(CONTRACTS, json=acme(signed_at="0001-01-01T00:00:00+01:00"), headers=auth(keys["admin"]))
    assert ["body", "signed_at"] in locs(assert_problem(response, 422, "VALIDATION_FAILED"))


async def test_an_unexpected_error_is_a_500_problem_that_leaks_nothing(settings, sandbox_transport, keys):
    async def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("select secret_column from api_client -- at /work/main/app/x.py line 3")

    async with app_client(settings, sandbox_transport, raise_app_exceptions=False) as client:
        client.app.state.services.contracts.register_contract = boom  # type: ignore[attr-defined]
        response = await client.post(
            CONTRACTS, json=acme(), headers={**auth(keys["integration"]), "X-Correlation-ID": "cid-500"}
        )
    problem = assert_problem(response, 500, "INTERNAL_ERROR")
    assert problem["correlation_id"] == "cid-500" and response.headers["x-correlation-id"] == "cid-500"
    assert "secret" not in response.text and "Traceback" not in response.text and ".py" not in response.text


# --- 4. body size ------------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_413_with_or_without_content_length(settings, sandbox_transport, keys):
    small = settings.model_copy(update={"max_body_bytes": 1000})
    headers = {**auth(keys["integration"]), "Content-Type": "application/json"}
    big = b'{"source": "' + b"x" * 2000 + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 256):
            yield big[start : start + 256]

    async with app_client(small, sandbox_transport) as client:
        declared = await client.post(CONTRACTS, content=big, headers=headers)
        assert_problem(declared, 413, "PAYLOAD_TOO_LARGE")
        streamed = await client.post(CONTRACTS, content=chunks(), headers=headers)
        assert "content-length" not in streamed.request.headers
        assert_problem(streamed, 413, "PAYLOAD_TOO_LARGE")
        # the same with an Idempotency-Key (that middleware reads the body itself)
        keyed = await client.post(CONTRACTS, content=chunks(), headers={**headers, "Idempotency-Key": "big-1"})
        assert_problem(keyed, 413, "PAYLOAD_TOO_LARGE")
        # a lying Content-Length does not get past the counter
        lying = await client.post(CONTRACTS, content=chunks(), headers={**headers, "Content-Length": "10"})
        assert lying.status_code in (400, 413)
        # a small body still goes through
        ok = await client.post(CONTRACTS, content=b"{}", headers=headers)
        assert_problem(ok, 422, "VALIDATION_FAILED")


# --- 6. correlation ids ------------------------------------------------------------------------


async def test_correlation_id_is_echoed_or_generated(api, keys):
    given = await api.get("/healthz", headers={"X-Correlation-ID": "req-abc.123"})
    assert given.headers["x-correlation-id"] == "req-abc.123"
    generated = await api.get("/healthz")
    again = await api.get("/healthz")
    assert generated.headers["x-correlation-id"] and again.headers["x-correlation-id"]
    assert generated.headers["x-correlation-id"] != again.headers["x-correlation-id"]
    # an unusable one (too long, odd characters) is replaced, not echoed
    odd = await api.get("/healthz", headers={"X-Correlation-ID": "a b<script>"})
    assert odd.headers["x-correlation-id"] != "a b<script>"
    # problems carry it too, in the header and the body
    missing = await api.get("/process/v1/nowhere", headers={**auth(keys["admin"]), "X-Correlation-ID": "cid-404"})
    assert missing.headers["x-correlation-id"] == "cid-404" and missing.json()["correlation_id"] == "cid-404"
    unauthorized = await api.get(CONTRACTS, headers={"X-Correlation-ID": "cid-401"})
    assert unauthorized.headers["x-correlation-id"] == "cid-401"


async def test_correlation_id_is_stored_and_propagated(settings, sandbox_transport, sandbox, services, keys):
    recording = RecordingTransport(sandbox_transport)
    cid = f"crm-{uuid.uuid4().hex[:8]}"
    async with app_client(settings, recording) as client:
        response = await client.post(
            CONTRACTS, json=acme(), headers={**auth(keys["integration"]), "X-Correlation-ID": cid}
        )
    assert response.status_code == 201, response.text
    assert response.headers["x-correlation-id"] == cid
    contract_id = uuid.UUID(response.json()["id"])
    async with services.db.connection() as conn:
        assert await conn.fetchval("select correlation_id from contract where id = $1", contract_id) == cid
        versions = await conn.fetch("select correlation_id from contract_version where contract_id = $1", contract_id)
        assert [r["correlation_id"] for r in versions] == [cid]
        events = await conn.fetch("select correlation_id from outbox_event where subject_id = $1", str(contract_id))
        assert events and {r["correlation_id"] for r in events} == {cid}
        audits = await conn.fetch("select correlation_id from audit_record where subject_id = $1", str(contract_id))
        assert audits and {r["correlation_id"] for r in audits} == {cid}
    # governance asked the ERP and the tax API during the request, each call carrying the id
    assert recording.requests, "registration made no outbound call"
    assert {headers.get("x-correlation-id") for _, headers in recording.requests} == {cid}


async def test_correlation_id_reaches_jobs_and_their_outbound_calls(api, settings, sandbox_transport, services, keys):
    from app.worker import build_worker

    cid = f"job-{uuid.uuid4().hex[:8]}"
    response = await api.post(CONTRACTS, json=acme(), headers={**auth(keys["integration"]), "X-Correlation-ID": cid})
    assert response.status_code == 201
    recording = RecordingTransport(sandbox_transport)
    worker = build_worker(settings, recording, burst=True, poll_delay=0.05, cron_jobs=[])
    try:
        await worker.async_run()
    finally:
        await worker.close()
    contract_id = response.json()["id"]
    ours = [
        headers
        for (url, headers), body in zip(recording.requests, recording.bodies, strict=True)
        if contract_id in url or contract_id.encode() in body
    ]
    assert any("/psa/" in url for url, _ in recording.requests)
    assert ours and {h.get("x-correlation-id") for h in ours} == {cid}


# --- 7. rate limits ----------------------------------------------------------------------------


async def test_rate_limit_is_per_client_with_retry_after(settings, sandbox_transport, services, keys):
    from app.auth import create_client

    async with services.db.transaction() as conn:
        _, key_a = await create_client(conn, f"rl-a-{uuid.uuid4().hex[:6]}", "finance")
        _, key_b = await create_client(conn, f"rl-b-{uuid.uuid4().hex[:6]}", "finance")
    limited = settings.model_copy(update={"default_rate_limit": "3/minute"})
    async with app_client(limited, sandbox_transport) as client:
        for _ in range(3):
            assert (await client.get(CONTRACTS, headers=auth(key_a))).status_code == 200
        refused = await client.get(CONTRACTS, headers={**auth(key_a), "X-Correlation-ID": "rl-1"})
        assert_problem(refused, 429, "RATE_LIMITED")
        assert 1 <= int(refused.headers["retry-after"]) <= 61
        assert refused.headers["x-correlation-id"] == "rl-1"
        # the same address, another client: its own budget
        assert (await client.get(CONTRACTS, headers=auth(key_b))).status_code == 200


async def _probes_stay_up(settings: Settings, transport: httpx.AsyncBaseTransport, key: str) -> None:
    limited = settings.model_copy(update={"default_rate_limit": "3/minute"})
    async with app_client(limited, transport) as client:
        for path in ("/healthz", "/readyz", "/openapi.json") * 7:
            assert (await client.get(path)).status_code == 200, path
        statuses = [(await client.get(CONTRACTS, headers=auth(key))).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]


async def test_probes_are_not_rate_limited(settings, sandbox_transport, keys):
    await _probes_stay_up(settings, sandbox_transport, keys["finance"])


# --- 8. OpenAPI, docs, metrics -----------------------------------------------------------------


async def test_openapi_documents_every_process_route(api):
    response = await api.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.1")
    from app.main import api_routes

    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    for route in api_routes():
        for method in route.methods - {"HEAD"}:  # type: ignore[attr-defined]
            assert (route.path, method.lower()) in documented, (route.path, method)  # type: ignore[attr-defined]
    process = {p: ops for p, ops in spec["paths"].items() if p.startswith("/process/v1/")}
    assert CONTRACTS in process and "post" in process[CONTRACTS]
    schemas = spec["components"]["schemas"]
    for path, ops in process.items():
        for method, op in ops.items():
            assert op["summary"] and "default" in op["responses"], (path, method)
            assert op.get("security") == [{"bearer": []}]
            if method in ("post", "put") and "requestBody" in op:
                ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                assert ref.removeprefix("#/components/schemas/") in schemas, ref
            for name in [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]:
                assert any(p["name"] == name and p["in"] == "path" for p in op["parameters"]), (path, name)
    contract_in = schemas[
        process[CONTRACTS]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    ]
    assert {"source", "external_id", "currency", "start_date", "end_date"} <= set(contract_in["required"])
    assert contract_in.get("additionalProperties") is False
    # money is documented as what is accepted: a decimal string, never a JSON number
    total_value = [o for o in contract_in["properties"]["total_value"]["anyOf"] if o.get("type") != "null"]
    assert total_value == [{**total_value[0], "type": "string"}] and "pattern" in total_value[0]
    # every POST documents Idempotency-Key; every $ref resolves
    for path, ops in process.items():
        if "post" in ops:
            assert any(p["name"] == "Idempotency-Key" for p in ops["post"]["parameters"]), path
    ids = [op["operationId"] for ops in spec["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [r for k, v in node.items() for r in ([v] if k == "$ref" else refs(v))]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(spec):
        assert ref.startswith("#/components/schemas/") and ref.split("/")[-1] in schemas, ref


async def test_docs_are_served_without_a_cdn(api):
    response = await api.get("/docs")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    import re

    html = response.text
    assert "/openapi.json" in html
    sources = re.findall(r'(?:src|href)=["\']([^"\']+)["\']', html)
    assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources), sources
    for source in sources:
        assert (await api.get(source)).status_code == 200, source
    assert "http://" not in html.replace("http://psbridge", "") and "https://" not in html


async def test_metrics_need_a_key_and_are_prometheus_text(api, keys):
    assert_problem(await api.get("/metrics"), 401)
    await api.get("/healthz")
    response = await api.get("/metrics", headers=auth(keys["admin"]))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE psbridge_http_requests_total counter" in response.text
    assert 'path="/healthz"' in response.text
    # unknown paths and invented methods are grouped, never one series per raw value
    await api.get(f"/no/such/{uuid.uuid4()}", headers=auth(keys["admin"]))
    await api.request("BREW", CONTRACTS, headers=auth(keys["admin"]))
    again = (await api.get("/metrics", headers=auth(keys["admin"]))).text
    assert "/no/such/" not in again and "BREW" not in again


# --- outbound URLs -----------------------------------------------------------------------------


async def test_ids_are_escaped_in_backend_urls(api, keys):
    injected = await api.get("/system/v1/erp/customers/ACME-001%3Fx", headers=auth(keys["finance"]))
    assert injected.status_code == 404, injected.text
    listing = await api.get("/system/v1/tax/jurisdictions/%3F", headers=auth(keys["finance"]))  # '/jurisdictions/?'
    assert listing.status_code == 404, listing.text
    body = acme(customer={"external_id": "ACME-001?x", "name": "Acme Holdings"})
    registered = await api.post(CONTRACTS, json=body, headers=auth(keys["integration"]))
    assert "CUSTOMER_NOT_IN_ERP" in {e["code"] for e in registered.json()["exceptions"]}


async def test_a_newline_in_a_jurisdiction_is_not_a_500(api, keys):
    body = acme(tax={"jurisdiction": "US-NY\n", "customer_tax_id": None})
    response = await api.post(CONTRACTS, json=body, headers=auth(keys["integration"]))
    assert response.status_code < 500


async def test_an_unknown_graphql_operation_name_is_not_a_500(settings, sandbox_transport, keys):
    async with app_client(settings, sandbox_transport, raise_app_exceptions=False) as client:
        for name in ("Nope", 5):
            body = {"query": "query Q { __typename }", "operationName": name}
            response = await client.post("/graphql", json=body, headers=auth(keys["admin"]))
            assert response.status_code < 500, response.text
