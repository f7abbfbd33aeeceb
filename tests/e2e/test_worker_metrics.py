"""Each worker process serves its own /metrics: two real ``psbridge worker`` processes on one machine, both
told ``PSBRIDGE_WORKER_METRICS_PORT=0``, each pick a free port and log it; after an invoice is posted
their counters show the job and the ERP calls it made."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.dev.seed import ACME_CONTRACT
from app.dev.servers import ServiceUrls
from tests.e2e.support import (
    Proc,
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


def _logged_metrics_port(worker: Proc) -> int | None:
    for line in worker.stderr_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and json.loads(line).get("event") == "worker metrics listening":
            return int(json.loads(line)["port"])
    return None


def _total(ports: list[int], name: str, **labels: str) -> float:
    """``name{labels}`` summed over the workers' own /metrics."""
    total = 0.0
    for port in ports:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            total += sum(s.value for s in family.samples if s.name == name and labels.items() <= s.labels.items())
    return total


def test_workers_serve_their_own_metrics(tmp_path: Path, service_urls: ServiceUrls) -> None:
    sbx_port, api_port = free_port(), free_port()
    sbx, api = f"http://127.0.0.1:{sbx_port}", f"http://127.0.0.1:{api_port}"
    with scratch_database(service_urls.database_url, "psbridge_e2e") as database_url:
        env = stack_env(database_url, service_urls.redis_url, sbx, PSBRIDGE_WORKER_METRICS_PORT="0")
        with processes(tmp_path, env) as procs:
            procs.start("sandbox", "sandbox", "--port", str(sbx_port))
            procs.run("migrate", "migrate")
            key = procs.run("clients create", "clients", "create", "e2e-admin", "--role", "admin").stdout.strip()
            procs.start("api", "serve", "--port", str(api_port))
            workers = [procs.start("worker1", "worker"), procs.start("worker2", "worker")]
            for url in (f"{sbx}/healthz", f"{api}/readyz"):
                wait_for(partial(http_ok, url), url, diagnostics=procs.diagnostics)
            ports = [
                wait_for(partial(_logged_metrics_port, w), f"{w.name} metrics port", diagnostics=procs.diagnostics)
                for w in workers
            ]
            assert len(set(ports)) == 2, ports

            with httpx.Client(timeout=15) as http:
                _post_one_invoice(http, sbx, api, key)

            def counted() -> bool:
                return _total(ports, "psbridge_jobs_total", job="post_invoice", outcome="success") >= 1

            wait_for(counted, "post_invoice counted a success", diagnostics=procs.diagnostics)
            # The project's billing schedule and the invoice itself: ERP calls made by the workers.
            assert _total(ports, "psbridge_erp_requests_total", outcome="ok") >= 2
            assert _total(ports, "psbridge_erp_throttle_wait_seconds_count") >= 2
            procs.check_alive()


def _post_one_invoice(http: httpx.Client, sbx: str, api: str, key: str) -> None:
    seed_master_data(http, api, sbx, key)

    r = http.post(f"{api}/process/v1/contracts", json=ACME_CONTRACT, headers=bearer(key))
    assert r.status_code == 201 and r.json()["status"] == "active", f"{r.status_code} {r.text}"
    contract_id = r.json()["id"]
    r = http.post(
        f"{api}/process/v1/milestones/{contract_id}/M1/acceptance",
        json={"accepted_at": "2026-03-28T16:00:00Z"},
        headers=bearer(key),
    )
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    r = http.post(f"{api}/process/v1/billing-runs", json={"as_of": "2026-03-31"}, headers=bearer(key))
    assert r.status_code == 201, f"{r.status_code} {r.text}"
    [invoice] = r.json()["invoices"]

    def posted() -> bool:
        status = http.get(f"{api}/process/v1/invoices/{invoice['id']}", headers=bearer(key)).json()["status"]
        assert status not in ("blocked", "failed"), status
        return status == "posted"

    wait_for(posted, f"invoice {invoice['id']} posted")
