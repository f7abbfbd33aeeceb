"""Circuit breakers on the ERP and the tax engine (app/circuit.py), shared through the real Redis:
a failure *rate* over the last calls opens one, a 30 % error rate never does, an open circuit stops
calls for its cool-down (no request reaches the backend), half open the first outcome decides, the
state shows on /readyz and /metrics, and a job that meets an open circuit waits without spending a try."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from arq import Retry

from app.bootstrap import build_services
from app.circuit import CircuitSettings, SharedCircuit
from app.errors import BackendUnavailable
from jobs.retry import attempt
from tests.factories import auth
from tests.integration.test_http_contract import app_client

ERP = "/erp/services/rest/record/v1"


def _circuit(services, cooldown: float = 30.0, ratio: float = 0.8) -> SharedCircuit:
    name = f"test:{uuid.uuid4().hex[:8]}"
    settings = CircuitSettings(window=20, min_calls=20, failure_ratio=ratio, cooldown=cooldown)
    return SharedCircuit(services.queue.pool, name, settings)


async def test_a_30_percent_error_rate_never_opens_it_and_an_outage_does_within_16_calls(services):
    circuit = _circuit(services)
    for i in range(1000):  # 3 failures in every 10 calls, in the worst order: together
        assert not await circuit.record(failed=i % 10 < 3)
    assert await circuit.state() == "closed"
    for n in range(1, 21):
        opened = await circuit.record(failed=True)
        # The 16th failure: the 4 calls before it all succeeded, so 16 of the last 20 failed.
        assert opened is (n == 16)
        if opened:
            break
    assert await circuit.state() == "open" and 29 < await circuit.wait() <= 30


async def test_the_ratio_is_a_setting_and_half_open_the_first_outcome_decides(services):
    circuit = _circuit(services, cooldown=0.2, ratio=0.5)
    for i in range(20):
        await circuit.record(failed=i % 2 == 1)  # the 20th call fails: 10 of 20, exactly half
    assert await circuit.state() == "open"
    await asyncio.sleep(0.25)
    assert await circuit.state() == "half_open" and await circuit.wait() is None
    assert await circuit.record(failed=True)  # the probe failed: open again at once
    assert await circuit.state() == "open"
    await asyncio.sleep(0.25)
    assert not await circuit.record(failed=False)  # the probe went through: closed
    assert await circuit.state() == "closed"


async def test_an_open_erp_circuit_stops_calls_and_shows_on_readyz_and_metrics(
    settings, sandbox_transport, sandbox, keys
):
    tight = settings.model_copy(
        update={
            "circuit_window": 4,
            "circuit_cooldown_seconds": 60,
            "queue_name": f"psbridge:test:{uuid.uuid4().hex[:8]}",
        }
    )
    await sandbox.post("/__sandbox/faults", json={"erp": {"down": True}})
    async with build_services(tight, sandbox_transport) as services:
        for _ in range(4):
            with pytest.raises(BackendUnavailable) as failed:
                await services.erp.find_customer("ACME-001")
            assert not failed.value.circuit_open
        before = len((await sandbox.get("/__sandbox/log", params={"system": "erp"})).json()["items"])
        with pytest.raises(BackendUnavailable) as stopped:
            await services.erp.find_customer("ACME-001")
        assert stopped.value.circuit_open and 59 < stopped.value.retry_after <= 60
        after = len((await sandbox.get("/__sandbox/log", params={"system": "erp"})).json()["items"])
        assert after == before  # not even sent
        assert await services.circuit_states() == {"erp": "open", "tax": "closed"}
    async with app_client(tight, sandbox_transport) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["circuits"] == {"erp": "open", "tax": "closed"}
        metrics = (await client.get("/metrics", headers=auth(keys["admin"]))).text
        assert 'psbridge_circuit_state{backend="erp",state="open"} 1.0' in metrics
        assert 'psbridge_circuit_state{backend="tax",state="closed"} 1.0' in metrics


async def test_a_job_meeting_an_open_circuit_waits_without_spending_a_try(services):
    job_id = f"post:{uuid.uuid4()}"
    ctx = {"services": services, "job_id": job_id, "job_try": 2, "max_tries": 3, "redis": services.queue.pool}
    finals: list[bool] = []

    async def circuit_open(final: bool) -> str:
        finals.append(final)
        raise BackendUnavailable("erp", "circuit open", retry_after=12.0, circuit_open=True)

    with pytest.raises(Retry) as waited:
        await attempt(ctx, "post_invoice", None, circuit_open)  # type: ignore[arg-type]
    assert finals == [False] and waited.value.defer_score == 12_000
    # The try after the wait is try 3 of arq's count, but only the second that reached a backend: not final.
    ctx["job_try"] = 3

    async def works(final: bool) -> str:
        finals.append(final)
        return "posted"

    assert await attempt(ctx, "post_invoice", None, works) == "posted"  # type: ignore[arg-type]
    assert finals == [False, False]
    assert await services.queue.pool.get(f"psbridge:circuit-waits:{job_id}") is None  # forgotten once done
