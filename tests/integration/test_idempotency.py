"""Idempotency-Key on POST (docs/api.md, docs/architecture.md "Reliability"), through the real app."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from app.auth import create_client
from app.main import create_app
from app.settings import Settings
from tests.factories import CONTRACTS, acme, auth

PROBLEM = "application/problem+json"


def keyed(api_key: str, idempotency_key: str) -> dict[str, str]:
    return {**auth(api_key), "Idempotency-Key": idempotency_key}


async def count(services, sql: str, *args: Any) -> int:  # noqa: ANN001
    async with services.db.connection() as conn:
        return int(await conn.fetchval(sql, *args))


@asynccontextmanager
async def app_client(settings: Settings, transport: httpx.AsyncBaseTransport) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, transport)
    async with LifespanManager(app) as manager:
        asgi = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=asgi, base_url="http://psbridge") as client:
            yield client


class GatedTransport(httpx.AsyncBaseTransport):
    """Holds every outbound call until ``release`` is set: makes a request slow on demand."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.entered.set()
        await self.release.wait()
        return await self.inner.handle_async_request(request)


async def test_same_key_and_body_replays_the_first_response_once(api, keys, services):
    headers = keyed(keys["integration"], f"create-{uuid.uuid4()}")
    first = await api.post(CONTRACTS, json=acme(), headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = await api.post(CONTRACTS, json=acme(), headers=headers)
    # without the key a resend would be 200; with it, it is the first answer again, byte for byte
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["x-correlation-id"]
    assert await count(services, "select count(*) from contract") == 1
    assert await count(services, "select count(*) from outbox_event where subject_type = 'contract'") == 1


async def test_a_replayed_milestone_acceptance_has_no_second_effect(api, keys, services):
    contract_id = (await api.post(CONTRACTS, json=acme(), headers=auth(keys["integration"]))).json()["id"]
    path = f"/process/v1/milestones/{contract_id}/M1/acceptance"
    headers = keyed(keys["integration"], "accept-M1")
    body = {"accepted_at": "2026-03-28T16:00:00Z", "accepted_by": "client PM"}
    first = await api.post(path, json=body, headers=headers)
    assert first.status_code == 200, first.text
    again = await api.post(path, json=body, headers=headers)
    assert (again.status_code, again.headers["idempotent-replayed"]) == (200, "true")
    assert again.json() == first.json()
    assert await count(services, "select count(*) from milestone_acceptance") == 1
    assert await count(services, "select count(*) from billing_transaction") == 1


async def test_same_key_with_another_body_or_path_is_422(api, keys, services):
    headers = keyed(keys["integration"], "reuse-1")
    assert (await api.post(CONTRACTS, json=acme(), headers=headers)).status_code == 201
    other = await api.post(CONTRACTS, json=acme(external_id="800XX0002"), headers=headers)
    assert other.status_code == 422 and other.headers["content-type"] == PROBLEM
    assert other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    elsewhere = await api.post("/process/v1/billing-runs", json={"as_of": "2026-03-31"}, headers=headers)
    assert elsewhere.status_code == 422 and elsewhere.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await count(services, "select count(*) from contract") == 1
    assert await count(services, "select count(*) from billing_run") == 0


async def test_same_key_while_the_first_is_in_flight_is_409(settings, sandbox_transport, sandbox, services, keys):
    gate = GatedTransport(sandbox_transport)
    headers = keyed(keys["integration"], "slow-1")
    async with app_client(settings, gate) as client:
        first = asyncio.create_task(client.post(CONTRACTS, json=acme(), headers=headers))
        await asyncio.wait_for(gate.entered.wait(), 5)  # the first is inside, waiting on the ERP
        second = await client.post(CONTRACTS, json=acme(), headers=headers)
        assert second.status_code == 409 and second.headers["content-type"] == PROBLEM
        assert second.json()["code"] == "IDEMPOTENCY_KEY_IN_USE"
        assert int(second.headers["retry-after"]) >= 1
        gate.release.set()
        done = await asyncio.wait_for(first, 10)
        assert done.status_code == 201, done.text
        third = await client.post(CONTRACTS, json=acme(), headers=headers)
        assert third.status_code == 201 and third.headers["idempotent-replayed"] == "true"
        assert third.json()["id"] == done.json()["id"]
    assert await count(services, "select count(*) from contract") == 1


async def test_an_in_flight_row_blocks_until_it_is_abandoned(api, keys, services):
    async with services.db.transaction() as conn:
        client_id = await conn.fetchval("select id from api_client where name = 'test-integration'")
        # a row another API process holds right now (the hash is whatever it is: in flight wins first)
        await conn.execute(
            """insert into idempotency_key (client_id, key, method, path, request_hash, state, expires_at)
               values ($1, 'held-1', 'POST', $2, 'x', 'in_flight', now() + interval '1 day')""",
            client_id,
            CONTRACTS,
        )
        # a row whose process died ten minutes ago
        await conn.execute(
            """insert into idempotency_key (client_id, key, method, path, request_hash, state, expires_at,
                                            created_at)
               values ($1, 'dead-1', 'POST', $2, 'x', 'in_flight', now() + interval '1 day',
                       now() - interval '10 minutes')""",
            client_id,
            CONTRACTS,
        )
    held = await api.post(CONTRACTS, json=acme(), headers=keyed(keys["integration"], "held-1"))
    assert held.status_code in (409, 422) and held.headers["content-type"] == PROBLEM
    taken_over = await api.post(CONTRACTS, json=acme(), headers=keyed(keys["integration"], "dead-1"))
    assert taken_over.status_code == 201, taken_over.text
    assert "idempotent-replayed" not in taken_over.headers


async def test_keys_are_scoped_to_the_api_client(api, keys, services):
    async with services.db.transaction() as conn:
        _, other_key = await create_client(conn, "another-crm", "integration")
    first = await api.post(CONTRACTS, json=acme(), headers=keyed(keys["integration"], "shared-1"))
    assert first.status_code == 201
    # the same key from another client is its own key: the request runs (a resend of equal content is 200)
    same = await api.post(CONTRACTS, json=acme(), headers=keyed(other_key, "shared-1"))
    assert same.status_code == 200 and "idempotent-replayed" not in same.headers
    assert same.json()["id"] == first.json()["id"]
    # and another body under that key is no reuse either
    other = await api.post(CONTRACTS, json=acme(external_id="800XX0003"), headers=keyed(other_key, "shared-2"))
    assert other.status_code == 201
    mine = await api.post(CONTRACTS, json=acme(external_id="800XX0003"), headers=keyed(keys["integration"], "shared-2"))
    assert mine.status_code == 200 and "idempotent-replayed" not in mine.headers
    assert await count(services, "select count(*) from idempotency_key") == 4


async def test_a_5xx_is_not_kept_so_a_retry_runs(api, keys, sandbox, services):
    headers = keyed(keys["integration"], "erp-down-1")
    await sandbox.post("/__sandbox/faults", json={"erp": {"down": True}})
    failed = await api.post(CONTRACTS, json=acme(), headers=headers)
    assert failed.status_code >= 500 and failed.headers["content-type"] == PROBLEM
    assert failed.json()["code"] == "BACKEND_UNAVAILABLE"
    assert await count(services, "select count(*) from idempotency_key") == 0
    await sandbox.post("/__sandbox/faults", json={"erp": {"down": False}})
    retried = await api.post(CONTRACTS, json=acme(), headers=headers)
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers
    assert await count(services, "select count(*) from idempotency_key where state = 'done'") == 1


async def test_4xx_answers_are_kept_and_replayed(api, keys):
    headers = keyed(keys["integration"], "bad-1")
    first = await api.post(CONTRACTS, json=acme(total_value=1.5), headers=headers)
    assert first.status_code == 422 and first.json()["code"] == "VALIDATION_FAILED"
    again = await api.post(CONTRACTS, json=acme(total_value=1.5), headers=headers)
    assert again.status_code == 422 and again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == PROBLEM and again.json()["errors"] == first.json()["errors"]


async def test_bad_keys_are_refused_and_other_methods_ignore_the_header(api, keys, services):
    for bad in ("x" * 256, "   ", "a\tb"):
        response = await api.post(CONTRACTS, json=acme(), headers=keyed(keys["integration"], bad))
        assert response.status_code == 422 and response.json()["code"] == "INVALID_IDEMPOTENCY_KEY", bad
    assert await count(services, "select count(*) from contract") == 0
    listed = await api.get(CONTRACTS, headers=keyed(keys["integration"], "get-1"))
    assert listed.status_code == 200 and "idempotent-replayed" not in listed.headers
    # an unauthenticated request never reaches the key store
    anonymous = await api.post(CONTRACTS, json=acme(), headers={"Idempotency-Key": "anon-1"})
    assert anonymous.status_code == 401
    assert await count(services, "select count(*) from idempotency_key where key in ('get-1', 'anon-1')") == 0


async def test_a_client_gone_mid_body_claims_nothing(settings, sandbox_transport, services, keys):
    """A half-sent body must not be run (nor stored under the key) as if it were the whole request."""
    body = httpx.Request("POST", "http://x", json=acme()).content
    app = create_app(settings, sandbox_transport)
    messages = [
        {"type": "http.request", "body": body[:40], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": CONTRACTS,
        "raw_path": CONTRACTS.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"psbridge"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {keys['integration']}".encode()),
            (b"idempotency-key", b"cut-1"),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("psbridge", 80),
    }
    async with LifespanManager(app) as manager:
        await manager.app(scope, receive, send)
    assert not any(m["type"] == "http.response.start" and m["status"] < 400 for m in sent)
    assert await count(services, "select count(*) from idempotency_key") == 0
    assert await count(services, "select count(*) from contract") == 0
