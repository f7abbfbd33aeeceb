"""The sandbox's world survives a restart when it has a state file (``--state-file``), and only then.

psbridge remembers what it posted to the ERP and the PSA project ids it was given; a sandbox that forgot
them on restart would answer 404 for those and hand out the same project ids again.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from sandbox.app import create_sandbox_app
from tests.e2e.support import REPO_ROOT, Proc, free_port, http_ok, wait_for
from tests.sandbox.test_sandbox_erp import ERP, invoice_body
from tests.sandbox.test_sandbox_psa_crm import PROJECT

CUSTOMER = {"companyName": "Acme Corp", "subsidiary": "US01"}
BILLED = {"type": "milestone", "external_id": "M1", "invoice_id": "INV-1", "status": "billed"}
CRM_STATUS = {"invoice_id": "INV-1", "status": "posted", "amount": "1088.75", "currency": "USD"}


# ------------------------------------------------------------------------------- a sandbox process


@contextmanager
def sandbox_process(state_file: Path, log_dir: Path, name: str) -> Iterator[str]:
    """``python -m sandbox --state-file ...`` until the block ends, then SIGTERM (as ``psbridge dev`` stops it)."""
    port = free_port()
    args = [sys.executable, "-m", "sandbox", "--port", str(port), "--state-file", str(state_file)]
    proc = Proc(name, args, {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"}, log_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_ok(f"{url}/healthz"), f"{name} healthz", diagnostics=proc.diagnostics)
        yield url
    finally:
        code = proc.stop()
    # uvicorn shuts down gracefully (the lifespan's end saves the state), then re-raises the SIGTERM.
    assert code in (0, -signal.SIGTERM), f"{name} exited {code}\n{proc.diagnostics()}"


def test_world_survives_a_restart_of_the_sandbox_process(tmp_path: Path) -> None:
    state_file = tmp_path / "data" / "sandbox-state.json"
    with sandbox_process(state_file, tmp_path, "first") as url, httpx.Client(base_url=url) as http:
        assert http.put(f"{ERP}/customer/eid:ACME-001", json=CUSTOMER).status_code == 204
        assert http.put(f"{ERP}/invoice/eid:INV-1", json=invoice_body([("1000.00", "88.75")])).status_code == 204
        first_project = http.post("/psa/projects", json=PROJECT).json()
        invoice = http.get(f"{ERP}/invoice/eid:INV-1").json()
    assert first_project["id"] == "PRJ-00001"
    assert not list(state_file.parent.glob("*.tmp")), "a temp file was left behind"

    with sandbox_process(state_file, tmp_path, "second") as url, httpx.Client(base_url=url) as http:
        assert http.get(f"{ERP}/invoice/eid:INV-1").json() == invoice
        assert http.get(f"{ERP}/invoice/{invoice['id']}").json() == invoice
        assert http.get(f"/psa/projects/{first_project['id']}").json() == first_project
        # Ids continue where they were: no project and no ERP record gets an id already given out.
        second_project = http.post("/psa/projects", json={**PROJECT, "external_id": "CTR-2"}).json()
        assert http.put(f"{ERP}/invoice/eid:INV-2", json=invoice_body([("10.00", "0.89")])).status_code == 204
        second_invoice = http.get(f"{ERP}/invoice/eid:INV-2").json()
    assert second_project["id"] == "PRJ-00002"
    assert int(second_invoice["id"]) == int(invoice["id"]) + 1


def test_an_unreadable_state_file_stops_the_sandbox_with_one_line(tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox-state.json"
    state_file.write_text("{not json")
    done = subprocess.run(
        [sys.executable, "-m", "sandbox", "--port", str(free_port()), "--state-file", str(state_file)],
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith("error: sandbox state: ") and "is not JSON" in line and "--reset" in line, line
    assert state_file.read_text() == "{not json", "the file must be left for the user to look at"


# ------------------------------------------------------------------------------- in process


@asynccontextmanager
async def served(state_file: Path | None) -> AsyncIterator[httpx.AsyncClient]:
    """The sandbox app under its lifespan (whose end saves the state), as an in-process client."""
    app = create_sandbox_app(state_file)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            yield client


async def _make_a_world(client: httpx.AsyncClient) -> None:
    assert (await client.put(f"{ERP}/customer/eid:ACME-001", json=CUSTOMER)).status_code == 204
    assert (await client.put(f"{ERP}/invoice/eid:INV-1", json=invoice_body([("100.00", "8.88")]))).status_code == 204
    assert (await client.post("/psa/projects", json=PROJECT)).status_code == 201
    assert (await client.post("/psa/billing-status", json={"items": [BILLED]})).status_code == 200
    assert (await client.post("/crm/contracts/CTR-1/billing-status", json=CRM_STATUS)).status_code == 200
    assert (await client.put("/tax/rates/GB", json={"rate": "0.175"})).status_code == 200
    assert (await client.put("/fx/rates/2026-03-31/EUR/USD", json={"rate": "1.0825"})).status_code == 201
    assert (await client.post("/__sandbox/faults", json={"erp": {"down": True}})).status_code == 200


async def _world(client: httpx.AsyncClient) -> dict[str, Any]:
    return {
        "invoices": (await client.get(f"{ERP}/invoice")).json()["items"],
        "customer": (await client.get(f"{ERP}/customer/1")).json(),
        "projects": (await client.get("/psa/projects")).json(),
        "psa_billing": (await client.get("/psa/billing-status")).json(),
        "crm_billing": (await client.get("/crm/contracts/CTR-1/billing-status")).json(),
        "gb": (await client.get("/tax/jurisdictions/GB")).json(),
        "fx": (await client.get("/fx/rates/2026-03-31/EUR/USD")).json(),
    }


async def test_everything_the_systems_remember_is_restored(tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox-state.json"
    async with served(state_file) as client:
        await _make_a_world(client)
        await client.post("/__sandbox/faults", json={"erp": {"down": False}})
        before = await _world(client)
        await client.post("/__sandbox/faults", json={"erp": {"down": True}})
    async with served(state_file) as client:
        # Faults and the request log belong to the test harness, not to the world: they start afresh.
        assert (await client.get("/__sandbox/faults")).json()["erp"]["down"] is False
        assert (await client.get("/__sandbox/log")).json()["items"] == []
        assert await _world(client) == before
    assert before["gb"]["rate"] == "0.175" and before["fx"]["rate"] == "1.0825"


async def test_a_reset_is_kept_too(tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox-state.json"
    async with served(state_file) as client:
        await _make_a_world(client)
        assert (await client.post("/__sandbox/reset")).status_code == 204
    async with served(state_file) as client:
        assert (await client.get("/psa/projects")).json() == {"items": []}
        assert (await client.get("/tax/jurisdictions/GB")).json()["rate"] == "0.20"


async def test_without_a_state_file_the_world_lives_in_memory(tmp_path: Path) -> None:
    async with served(None) as client:
        await _make_a_world(client)
    assert list(tmp_path.iterdir()) == []
    async with served(None) as client:
        assert (await client.get("/psa/projects")).json() == {"items": []}


async def test_the_state_file_is_plain_json_without_the_log(tmp_path: Path) -> None:
    state_file = tmp_path / "sandbox-state.json"
    async with served(state_file) as client:
        await _make_a_world(client)
    saved = json.loads(state_file.read_text())
    assert set(saved) == {"format", "version", "erp", "psa", "crm", "tax_rates", "fx_rates"}
    assert saved["psa"]["next_project"] == 2
