"""``psbridge billing-run`` and ``psbridge replay`` against a running stack (sandbox, two APIs, two
workers): a billing run from the command line prints its invoices per status and currency, and
replay lists (``--dry-run``) then re-drives what the PSA refused — a propagation and billed feedback."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from app.dev.seed import ACME_CONTRACT
from app.dev.servers import ServiceUrls
from tests.e2e.support import bearer, two_apis, wait_for

pytestmark = pytest.mark.e2e


def _contract(n: int) -> dict[str, Any]:
    body = copy.deepcopy(ACME_CONTRACT)
    body.update(external_id=f"006CLI{n:04d}", number=f"SOW-CLI-{n}")
    return body


def test_billing_run_and_replay_from_the_command_line(tmp_path: Path, service_urls: ServiceUrls) -> None:
    with two_apis(
        tmp_path, service_urls.database_url, service_urls.redis_url, "ops", PSBRIDGE_SWEEP_GRACE_SECONDS="1"
    ) as s:
        api1, api2 = s.apis
        finance = bearer(s.keys["finance"])
        # The PSA refuses everything for a while: the contract's propagation to it fails for good.
        assert s.http.post(f"{s.sandbox}/__sandbox/faults", json={"psa": {"reject_rate": 1.0}}).status_code == 200
        r = s.http.post(f"{api1}/process/v1/contracts", json=_contract(1), headers=bearer(s.keys["crm"]))
        assert r.status_code == 201, r.text
        contract_id = r.json()["id"]

        def psa_failed() -> bool | None:
            c = s.http.get(f"{api2}/process/v1/contracts/{contract_id}", headers=finance).json()
            return (c.get("propagation") or {}).get("psa", {}).get("status") == "failed" or None

        wait_for(psa_failed, "the PSA propagation failed")
        r = s.http.post(
            f"{api2}/process/v1/milestones/{contract_id}/M1/acceptance",
            json={"accepted_at": "2026-03-28T16:00:00Z"},
            headers=bearer(s.keys["psa"]),
        )
        assert r.status_code == 200, r.text

        run = s.procs.run("billing-run", "billing-run", "--as-of", "2026-03-31", timeout=60)
        assert "queued" in run.stdout and "USD" in run.stdout and "100,000.00" in run.stdout, run.stdout
        [invoice] = s.http.get(f"{api1}/process/v1/invoices?contract_id={contract_id}", headers=finance).json()["items"]

        def refused_feedback() -> bool | None:
            queue = s.http.get(f"{api1}/process/v1/exceptions?code=FEEDBACK_REJECTED", headers=finance).json()
            return any(e["subject"]["id"] == invoice["id"] for e in queue["items"]) or None

        wait_for(refused_feedback, "the billed feedback refused by the PSA")

        dry = s.procs.run("replay --dry-run", "replay", "--dry-run", timeout=60)
        assert contract_id in dry.stdout and invoice["id"] in dry.stdout, dry.stdout
        assert "propagate again" in dry.stdout and "tell PSA and CRM again" in dry.stdout

        assert s.http.post(f"{s.sandbox}/__sandbox/faults", json={"psa": {"reject_rate": 0.0}}).status_code == 200
        done = s.procs.run("replay", "replay", "--kind", "propagations", "--kind", "feedback", timeout=60)
        assert "replayed" in done.stdout, done.stdout

        def healed() -> bool | None:
            c = s.http.get(f"{api2}/process/v1/contracts/{contract_id}", headers=finance).json()
            billed = s.http.get(f"{s.sandbox}/psa/billing-status").json()["items"]
            confirmed = (c.get("propagation") or {}).get("psa", {}).get("status") == "confirmed"
            return (confirmed and any(i["invoice_id"] == invoice["id"] for i in billed)) or None

        wait_for(healed, "the propagation confirmed and the PSA told", timeout=60)
        again = s.procs.run("replay --dry-run", "replay", "--dry-run", timeout=60)
        assert contract_id not in again.stdout and invoice["id"] not in again.stdout, again.stdout
        s.procs.check_alive()
