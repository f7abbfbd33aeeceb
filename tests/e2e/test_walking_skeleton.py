"""The walking skeleton over real HTTP between real processes.

sandbox + ``psbridge migrate`` + two ``psbridge serve`` + two ``psbridge worker``, all started with
``python -m app.cli`` against a database made for this test: contract -> project -> milestone ->
billing run -> invoice posted once to the ERP; then the same billing run fired at both APIs at once.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.dev.seed import ACME_CONTRACT
from app.dev.servers import ServiceUrls
from tests.e2e.support import (
    Procs,
    bearer,
    free_port,
    http_ok,
    processes,
    scratch_database,
    seed_master_data,
    stack_env,
    wait_for,
)

pytestmark = pytest.mark.e2e

ERP = "/erp/services/rest/record/v1"
KEY_LINE = re.compile(r"psb_[A-Za-z0-9_-]{20,}\n")


def _create_key(procs: Procs, name: str, role: str) -> str:
    out = procs.run(f"clients create {name}", "clients", "create", name, "--role", role).stdout
    assert KEY_LINE.fullmatch(out), f"stdout must be exactly the key and a newline, got {out!r}"
    return out[:-1]


def _contract(external_id: str, number: str) -> dict[str, Any]:
    body = copy.deepcopy(ACME_CONTRACT)
    body.update(external_id=external_id, number=number)
    return body


def test_contract_to_posted_invoice_across_processes(tmp_path: Path, service_urls: ServiceUrls) -> None:
    sbx_port, api1_port, api2_port = free_port(), free_port(), free_port()
    sbx = f"http://127.0.0.1:{sbx_port}"
    api1, api2 = f"http://127.0.0.1:{api1_port}", f"http://127.0.0.1:{api2_port}"
    with scratch_database(service_urls.database_url, "psbridge_e2e") as database_url:
        env = stack_env(database_url, service_urls.redis_url, sbx)
        with processes(tmp_path, env) as procs:
            procs.start("sandbox", "sandbox", "--port", str(sbx_port))
            procs.run("migrate", "migrate")
            admin = _create_key(procs, "e2e-admin", "admin")
            integration = _create_key(procs, "e2e-integration", "integration")
            finance = _create_key(procs, "e2e-finance", "finance")
            procs.start("api1", "serve", "--port", str(api1_port))
            procs.start("api2", "serve", "--port", str(api2_port))
            procs.start("worker1", "worker")
            procs.start("worker2", "worker")
            for url in (f"{sbx}/healthz", f"{api1}/readyz", f"{api2}/readyz"):
                wait_for(partial(http_ok, url), url)
            procs.check_alive()
            with httpx.Client(timeout=15) as http:
                _walk(http, sbx, api1, api2, admin, integration, finance)
                _concurrent_billing_runs(http, sbx, api1, api2, integration, finance)
            procs.check_alive()


def _walk(http: httpx.Client, sbx: str, api1: str, api2: str, admin: str, integration: str, finance: str) -> None:
    seed_master_data(http, api1, sbx, admin)

    r = http.post(f"{api1}/process/v1/contracts", json=ACME_CONTRACT, headers=bearer(integration))
    assert r.status_code == 201, f"{r.status_code} {r.text}"
    created = r.json()
    assert created["status"] == "active" and created["exceptions"] == [], created
    contract_id = created["id"]

    # A worker (either one) propagates it; the other API process sees the result.
    def propagated() -> dict[str, Any] | None:
        c = http.get(f"{api2}/process/v1/contracts/{contract_id}", headers=bearer(finance)).json()
        prop = c.get("propagation") or {}
        done = c.get("project_id") and all((prop.get(t) or {}).get("status") == "confirmed" for t in ("psa", "erp"))
        return c if done else None

    contract = wait_for(propagated, "PSA/ERP propagation")
    assert contract["project_id"].startswith("PRJ-"), contract

    r = http.post(
        f"{api1}/process/v1/milestones/{contract_id}/M1/acceptance",
        json={"accepted_at": "2026-03-28T16:00:00Z", "accepted_by": "client PM"},
        headers=bearer(integration),
    )
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    transaction = r.json()["transaction"]

    correlation = f"e2e-{uuid.uuid4()}"
    r = http.post(
        f"{api2}/process/v1/billing-runs",
        json={"as_of": "2026-03-31"},
        headers={**bearer(finance), "X-Correlation-ID": correlation},
    )
    assert r.status_code == 201, f"{r.status_code} {r.text}"
    assert r.headers.get("x-correlation-id") == correlation
    [invoice] = r.json()["invoices"]
    assert (invoice["net"], invoice["tax"], invoice["total"]) == ("100000.00", "8875.00", "108875.00"), invoice
    assert invoice["status"] == "queued" and invoice["contract_id"] == contract_id

    posted = _wait_posted(http, api1, finance, invoice["id"])
    assert posted["total"] == "108875.00"
    assert [tid for line in posted["lines"] for tid in line["transaction_ids"]] == [transaction["id"]]

    listing = http.get(f"{sbx}{ERP}/invoice", params={"limit": 1000}).json()
    assert listing["totalResults"] == 1, listing
    [erp_invoice] = listing["items"]
    assert erp_invoice["externalId"] == invoice["id"] and erp_invoice["id"] == posted["erp_ref"], erp_invoice
    assert erp_invoice["total"] == posted["total"]


def _wait_posted(http: httpx.Client, api: str, key: str, invoice_id: str, timeout: float = 30) -> dict[str, Any]:
    def posted() -> dict[str, Any] | None:
        inv = http.get(f"{api}/process/v1/invoices/{invoice_id}", headers=bearer(key)).json()
        assert inv["status"] not in ("blocked", "failed"), inv
        return inv if inv["status"] == "posted" and inv["erp_ref"] else None

    return wait_for(posted, f"invoice {invoice_id} posted", timeout=timeout)


def _concurrent_billing_runs(
    http: httpx.Client, sbx: str, api1: str, api2: str, integration: str, finance: str
) -> None:
    """Both API processes run the same billing run at the same moment: no transaction is billed twice."""
    r = http.post(
        f"{api2}/process/v1/contracts", json=_contract("800XX0002", "SOW-2026-015"), headers=bearer(integration)
    )
    assert r.status_code == 201 and r.json()["status"] == "active", f"{r.status_code} {r.text}"
    contract_id = r.json()["id"]
    transactions = set()
    for key in ("M1", "M2"):  # two billable transactions, so the runs have something to split between them
        r = http.post(
            f"{api1}/process/v1/milestones/{contract_id}/{key}/acceptance",
            json={"accepted_at": "2026-03-28T16:00:00Z"},
            headers=bearer(integration),
        )
        assert r.status_code == 200, f"{key}: {r.status_code} {r.text}"
        transactions.add(r.json()["transaction"]["id"])

    barrier = threading.Barrier(2)

    def run_billing(api: str) -> httpx.Response:
        with httpx.Client(timeout=15) as own:
            barrier.wait(5)
            return own.post(
                f"{api}/process/v1/billing-runs",
                json={"as_of": "2026-03-31", "contract_id": contract_id},
                headers=bearer(finance),
            )

    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(pool.map(run_billing, (api1, api2)))
    assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
    invoices = [inv for r in responses for inv in r.json()["invoices"]]
    assert invoices, "neither run billed the accepted milestones"
    assert len({inv["id"] for inv in invoices}) == len(invoices)

    listed = http.get(
        f"{api1}/process/v1/invoices", params={"contract_id": contract_id}, headers=bearer(finance)
    ).json()["items"]
    assert sorted(i["id"] for i in listed) == sorted(i["id"] for i in invoices), listed

    billed: list[str] = []
    total = 0
    for inv in invoices:
        posted = _wait_posted(http, api2, finance, inv["id"])
        billed += [tid for line in posted["lines"] for tid in line["transaction_ids"]]
        total += int(posted["total"].replace(".", ""))
        erp = http.get(f"{sbx}{ERP}/invoice/eid:{inv['id']}")
        assert erp.status_code == 200 and erp.json()["id"] == posted["erp_ref"], erp.text
        assert erp.json()["total"] == posted["total"]
    assert sorted(billed) == sorted(transactions), "every transaction on exactly one invoice"
    assert total == 23952500  # (100,000.00 + 120,000.00) x 1.08875
    # Usually one invoice; SKIP LOCKED may legitimately split the two transactions between the runs.

    listing = http.get(f"{sbx}{ERP}/invoice", params={"limit": 1000}).json()
    externals = [item["externalId"] for item in listing["items"]]
    assert listing["totalResults"] == 1 + len(invoices) and len(set(externals)) == len(externals), listing
    assert {i["id"] for i in invoices} <= set(externals)
