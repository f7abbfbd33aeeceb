"""Redis forgets everything mid-run: PostgreSQL is the truth, Redis only a buffer.

Two ``psbridge serve`` and two ``psbridge worker`` on a Redis logical database of their own; the
sandbox ERP answers slowly, so a billing run's invoices are still queued and being posted when the
database is flushed (queued jobs, in-progress markers, the sweeper's cron lock, the ERP throttle all
gone), and the PSA is down then, so the billed feedback of the invoices posted so far waits in Redis
for its retry and is flushed too. Every invoice still ends posted exactly once in the ERP, with its
total, and the PSA and the CRM still learn that each was billed: the sweeper finds every intent left
in PostgreSQL.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import redis

from app.dev.seed import ACME_CONTRACT
from app.dev.servers import ServiceUrls
from tests.e2e.support import bearer, redis_db, two_apis, wait_for

pytestmark = pytest.mark.e2e

ERP = "/erp/services/rest/record/v1"
INVOICES = 8
FLUSHED_DB = 13  # the stack's own logical database: the flush touches nothing else


def _contract(n: int) -> dict[str, Any]:
    body = copy.deepcopy(ACME_CONTRACT)
    body.update(external_id=f"006FLUSH{n:04d}", number=f"SOW-FLUSH-{n}")
    return body


def test_a_redis_flush_mid_run_loses_and_duplicates_nothing(tmp_path: Path, service_urls: ServiceUrls) -> None:
    redis_url = redis_db(service_urls.redis_url, FLUSHED_DB)
    with two_apis(
        tmp_path, service_urls.database_url, redis_url, "flush", timeout=30, PSBRIDGE_SWEEP_GRACE_SECONDS="2"
    ) as s:
        api1, api2 = s.apis
        contracts = {}
        for n in range(INVOICES):
            r = s.http.post(f"{api1}/process/v1/contracts", json=_contract(n), headers=bearer(s.keys["crm"]))
            assert r.status_code == 201, r.text
            contracts[r.json()["id"]] = _contract(n)["external_id"]
            r = s.http.post(
                f"{api2}/process/v1/milestones/{r.json()['id']}/M1/acceptance",
                json={"accepted_at": "2026-03-28T16:00:00Z"},
                headers=bearer(s.keys["psa"]),
            )
            assert r.status_code == 200, r.text
        # The PSA is down when the flush comes: feedback for what is posted by then waits in Redis for a retry.
        r = s.http.post(f"{s.sandbox}/__sandbox/faults", json={"erp": {"latency_ms": 400}, "psa": {"down": True}})
        assert r.status_code == 200, r.text

        finance = bearer(s.keys["finance"])
        r = s.http.post(f"{api1}/process/v1/billing-runs", json={"as_of": "2026-03-31"}, headers=finance)
        assert r.status_code == 201, r.text
        invoices = {i["id"]: i for i in r.json()["invoices"]}
        assert len(invoices) == INVOICES

        def statuses() -> dict[str, str]:
            found = {}
            for invoice_id in invoices:
                got = s.http.get(f"{api2}/process/v1/invoices/{invoice_id}", headers=bearer(s.keys["finance"]))
                found[invoice_id] = got.json()["status"]
            return found

        wait_for(lambda: "posted" in statuses().values() or None, "a first invoice posted", timeout=30)
        mid_run = statuses()
        assert list(mid_run.values()).count("posted") < INVOICES, "the flush must come mid-run"
        redis.Redis.from_url(redis_url).flushdb()
        r = s.http.post(f"{s.sandbox}/__sandbox/faults", json={"psa": {"down": False}})
        assert r.status_code == 200, r.text

        def all_done() -> bool | None:
            if set(statuses().values()) != {"posted"}:
                return None
            psa = s.http.get(f"{s.sandbox}/psa/billing-status").json()["items"]
            return len({i["invoice_id"] for i in psa}) == INVOICES or None

        wait_for(all_done, "every invoice posted and reported to the PSA after the flush", timeout=60)
        listing = s.http.get(f"{s.sandbox}{ERP}/invoice", params={"limit": 1000}).json()
        assert listing["totalResults"] == INVOICES, listing  # nothing posted twice
        assert {i["externalId"]: i["total"] for i in listing["items"]} == {
            invoice_id: invoice["total"] for invoice_id, invoice in invoices.items()
        }
        psa = s.http.get(f"{s.sandbox}/psa/billing-status").json()["items"]
        assert sorted(i["invoice_id"] for i in psa) == sorted(invoices)
        for contract_id, external_id in contracts.items():
            crm = s.http.get(f"{s.sandbox}/crm/contracts/{external_id}/billing-status").json()["items"]
            mine = [i for i in invoices.values() if i["contract_id"] == contract_id]
            assert [i["invoice_id"] for i in crm] == [i["id"] for i in mine], (external_id, crm)
        s.procs.check_alive()
