"""The contract lifecycle as outsiders meet it: real processes, real HTTP, keys from the CLI.

One stack for the module: ``psbridge sandbox``, two ``psbridge serve`` and two ``psbridge worker`` on one
scratch database and one scratch queue. Requests are spread across both API processes.

- the CRM registers the demo's Acme contract; both targets confirm it; the PSA may not touch its terms;
  a dry run of change order CO-7 shows its impact and changes nothing (no push to the PSA either);
  four different version-2 bodies race over both APIs (one wins, the winner's resend is a 200);
  every amendment rule fails in one 422; version 2's plan lands in the sandbox PSA and ERP;
  open exceptions are listed with their SLA, queue, group and count;
- a Salesforce-shaped event maps to the same contract as the canonical body; an unmappable one is a 422
  naming Salesforce's fields and an open ``MAPPING_FAILED`` exception.

What each rule does in detail is tests/integration/test_amendments.py's business; this proves it end to end.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.canonical.contract import ACME_CHANGE_ORDER
from app.dev.seed import ACME_CONTRACT
from app.dev.servers import ServiceUrls
from tests.e2e.support import (
    Procs,
    bearer,
    two_apis,
    wait_for,
)
from tests.salesforce import encode, salesforce_event

pytestmark = pytest.mark.e2e

ERP = "/erp/services/rest/record/v1"
CONTRACTS = "/process/v1/contracts"
SALESFORCE_EVENTS = "/system/v1/crm/salesforce/events"
PROPAGATION_TIMEOUT = 90  # generous: a loaded 2-core machine runs eight Python processes here
# What differs between two registrations of the same terms: identity, when, and what the targets answered.
NOT_TERMS = {"id", "external_id", "number", "created_at", "updated_at", "project_id", "propagation", "exceptions"}


@dataclass
class Stack:
    sandbox: str
    apis: tuple[str, str]
    keys: dict[str, str]
    procs: Procs
    http: httpx.Client

    def get(self, path: str, key: str = "finance", api: int = 0, **params: Any) -> httpx.Response:
        return self.http.get(f"{self.apis[api]}{path}", params=params, headers=bearer(self.keys[key]))

    def post(self, path: str, body: Any, key: str, api: int = 0) -> httpx.Response:
        return self.http.post(f"{self.apis[api]}{path}", json=body, headers=bearer(self.keys[key]))

    def contract(self, contract_id: str, api: int = 0) -> dict[str, Any]:
        r = self.get(f"{CONTRACTS}/{contract_id}", api=api)
        assert r.status_code == 200, f"GET contract {contract_id}: {r.status_code} {r.text}"
        body: dict[str, Any] = r.json()
        return body

    def pages(self, path: str, key: str = "finance", **params: Any) -> list[dict[str, Any]]:
        """Every item of a cursor-paginated list, alternating the API processes page by page."""
        items: list[dict[str, Any]] = []
        after: str | None = None
        for page in range(1000):
            query = {**params, "limit": 100, **({"after": after} if after else {})}
            r = self.get(path, key=key, api=page % 2, **query)
            assert r.status_code == 200, f"GET {path} {query}: {r.status_code} {r.text}"
            items += r.json()["items"]
            after = r.json()["next_cursor"]
            if not after:
                return items
        raise AssertionError(f"{path}: more than 1000 pages")

    def wait_confirmed(self, contract_id: str, version: int) -> dict[str, Any]:
        """Poll (either API) until ``version`` is the latest and both targets confirmed it."""

        turns = itertools.count()

        def confirmed() -> dict[str, Any] | None:
            c = self.contract(contract_id, api=next(turns) % 2)
            if c["version"] != version or not c.get("project_id"):
                return None
            tops = [(c["propagation"].get(t) or {}).get("status") for t in ("psa", "erp")]
            mine = [v for v in c["versions"] if v["version"] == version]
            ours = [(mine[0]["propagation"].get(t) or {}).get("status") for t in ("psa", "erp")] if mine else []
            return c if tops == ours == ["confirmed", "confirmed"] else None

        return wait_for(
            confirmed,
            f"version {version} of {contract_id} confirmed at the PSA and the ERP",
            timeout=PROPAGATION_TIMEOUT,
            interval=0.3,
            diagnostics=lambda: f"{self.contract(contract_id)}\n{self.procs.diagnostics()}",
        )

    def pushes(self, system: str, after: int = 0) -> list[dict[str, Any]]:
        """The sandbox's log of ``system`` after seq ``after``: only the writes (psbridge pushing), not reads."""
        items: list[dict[str, Any]] = []
        cursor = after
        while True:
            r = self.http.get(f"{self.sandbox}/__sandbox/log", params={"system": system, "after": cursor})
            assert r.status_code == 200, r.text
            items += r.json()["items"]
            if not r.json()["next_cursor"]:
                return [i for i in items if i["method"] not in ("GET", "HEAD")]
            cursor = int(r.json()["next_cursor"])

    def last_seq(self, system: str) -> int:
        items = self.pushes(system)
        return max((i["seq"] for i in items), default=0)

    @contextmanager
    def diagnosed(self) -> Iterator[None]:
        """A failing assertion gets the processes' output tails appended."""
        try:
            yield
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.procs.diagnostics()}") from None
        self.procs.check_alive()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, service_urls: ServiceUrls) -> Iterator[Stack]:
    log_dir: Path = tmp_path_factory.mktemp("lifecycle")
    with two_apis(log_dir, service_urls.database_url, service_urls.redis_url, "lifecycle") as s:
        yield Stack(s.sandbox, s.apis, s.keys, s.procs, s.http)


def change_order(travel_cap: str) -> dict[str, Any]:
    body = copy.deepcopy(ACME_CHANGE_ORDER)
    body["changes"]["reimbursable_expenses"] = [{"category": "travel", "cap": travel_cap}]  # type: ignore[index]
    return body


def _terms(contract: dict[str, Any]) -> dict[str, Any]:
    terms = {k: v for k, v in contract.items() if k not in NOT_TERMS}
    terms["versions"] = [
        {k: v for k, v in x.items() if k not in ("created_at", "propagation")} for x in terms["versions"]
    ]
    return terms


def test_register_amend_race_and_propagate_across_processes(stack: Stack) -> None:
    with stack.diagnosed():
        # 2. The CRM registers the demo's fixed-fee contract; a worker (either) propagates it to both targets.
        r = stack.post(CONTRACTS, ACME_CONTRACT, key="crm", api=0)
        assert r.status_code == 201, f"{r.status_code} {r.text}"
        created = r.json()
        assert (created["status"], created["version"], created["exceptions"]) == ("active", 1, []), created
        contract_id = created["id"]
        v1 = stack.wait_confirmed(contract_id, 1)
        assert v1["project_id"], v1
        psa_seen = stack.last_seq("psa")

        # 4. A dry run of CO-7 shows the impact ...
        r = stack.post(f"{CONTRACTS}/{contract_id}/amendments?dry_run=true", ACME_CHANGE_ORDER, key="crm", api=1)
        assert r.status_code == 200, f"{r.status_code} {r.text}"
        preview = r.json()
        assert preview["dry_run"] is True and preview["version"] == 2, preview
        assert preview["total_value"] == {"before": "300000.00", "after": "360000.00"}, preview
        assert preview["milestones"]["added"] == ["M4"], preview

        # 3. ... and the PSA may neither register nor amend contract terms (the CRM owns them).
        psa_contract = {**copy.deepcopy(ACME_CONTRACT), "external_id": "800XX0PSA", "number": "SOW-PSA-001"}
        for what, path, body in (
            ("register the same contract", CONTRACTS, ACME_CONTRACT),
            ("register a new contract", CONTRACTS, psa_contract),
            ("amend", f"{CONTRACTS}/{contract_id}/amendments", ACME_CHANGE_ORDER),
            ("amend, dry run", f"{CONTRACTS}/{contract_id}/amendments?dry_run=true", ACME_CHANGE_ORDER),
        ):
            for api in (0, 1):
                r = stack.post(path, body, key="psa", api=api)
                assert r.status_code == 403, f"PSA key may not {what}: {r.status_code} {r.text}"
                assert r.headers["content-type"].startswith("application/problem+json"), r.headers
                assert r.json()["code"] == "FIELD_NOT_OWNED", r.text

        # Nothing changed: the same contract (still version 1), no new contract, nothing pushed to the PSA.
        for api in (0, 1):
            assert stack.contract(contract_id, api=api) == v1
        numbers = [c["number"] for c in stack.pages(CONTRACTS)]
        assert "SOW-PSA-001" not in numbers and numbers.count(ACME_CONTRACT["number"]) == 1, numbers
        assert stack.pushes("psa", after=psa_seen) == []

        # 5. Four different version-2 bodies at once, over both API processes: one wins, three conflict.
        bodies = [change_order(f"{20000 + i}.00") for i in range(4)]
        barrier = threading.Barrier(len(bodies))

        def amend(i: int) -> httpx.Response:
            with httpx.Client(timeout=60) as own:
                barrier.wait(30)
                return own.post(
                    f"{stack.apis[i % 2]}{CONTRACTS}/{contract_id}/amendments",
                    json=bodies[i],
                    headers=bearer(stack.keys["crm"]),
                )

        with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
            responses = list(pool.map(amend, range(len(bodies))))
        statuses = [r.status_code for r in responses]
        assert sorted(statuses) == [201, 409, 409, 409], [f"{r.status_code} {r.text}" for r in responses]
        assert [r.json()["code"] for r in responses if r.status_code == 409] == ["VERSION_CONFLICT"] * 3
        won = statuses.index(201)
        assert responses[won].json()["version"] == 2 and responses[won].json()["id"] == contract_id
        winner = bodies[won]
        again = stack.post(f"{CONTRACTS}/{contract_id}/amendments", winner, key="crm", api=(won + 1) % 2)
        assert again.status_code == 200, f"the winner's resend: {again.status_code} {again.text}"
        assert (again.json()["id"], again.json()["version"]) == (contract_id, 2), again.text

        # 6. Every failing rule of a version-3 attempt in one 422, the first one's code on top.
        bad = {
            "version": 3,
            "effective_date": "2025-12-01",  # before the start (2026-01-05)
            "changes": {
                "end_date": "2026-11-30",  # shortens the term (2026-12-18)
                "update_milestones": [{"key": "M9", "name": "Nobody"}],
                "add_milestones": [{"key": "M1", "name": "Again", "amount": "1.00"}],
                "total_value": "310000.00",  # the milestones sum to 360,001.00
            },
        }
        r = stack.post(f"{CONTRACTS}/{contract_id}/amendments", bad, key="crm", api=1)
        assert r.status_code == 422, f"{r.status_code} {r.text}"
        assert r.headers["content-type"].startswith("application/problem+json"), r.headers
        problem = r.json()
        codes = [e["code"] for e in problem["errors"]]
        for code in (
            "INVALID_EFFECTIVE_DATE",
            "INVALID_END_DATE",
            "UNKNOWN_MILESTONE",
            "DUPLICATE_MILESTONE",
            "MILESTONES_DO_NOT_SUM",
        ):
            assert code in codes, problem
        assert problem["code"] == codes[0], problem

        # 7. Version 2 (the winner's) reaches both targets; the sandbox holds its plan.
        v2 = stack.wait_confirmed(contract_id, 2)
        assert [v["version"] for v in v2["versions"]] == [1, 2], v2
        assert v2["total_value"] == "360000.00" and v2["project_id"] == v1["project_id"], v2
        assert v2["reimbursable_expenses"] == winner["changes"]["reimbursable_expenses"], v2
        project = stack.http.get(f"{stack.sandbox}/psa/projects/{v2['project_id']}").json()
        assert project["budget"] == "360000.00", project
        assert [(m["key"], m["depends_on"]) for m in project["milestones"]] == [
            ("M1", []),
            ("M2", ["M1"]),
            ("M3", ["M2"]),
            ("M4", ["M3"]),
        ], project
        job = stack.http.get(f"{stack.sandbox}{ERP}/job/eid:{contract_id}").json()
        assert job["planVersion"] == 2, job
        assert [m["milestone"] for m in job["billingSchedule"]] == ["M1", "M2", "M3", "M4"], job
        assert (job["billingSchedule"][-1]["amount"], job["billingSchedule"][-1]["dueDate"]) == (
            "60000.00",
            "2026-11-30",
        ), job

        # 9. A contract for a customer the ERP does not know is blocked, and its exception is on the open list.
        stranger = {
            **copy.deepcopy(ACME_CONTRACT),
            "external_id": "800XX0NOBODY",
            "number": "SOW-NOBODY-001",
            "customer": {"external_id": "NOBODY-001", "name": "Nobody Ltd"},
        }
        r = stack.post(CONTRACTS, stranger, key="crm", api=1)
        assert r.status_code == 201, f"{r.status_code} {r.text}"
        assert r.json()["status"] == "blocked" and r.json()["exceptions"], r.text
        raised = {e["id"] for e in r.json()["exceptions"]}
        listed = stack.pages("/process/v1/exceptions", status="open")
        assert raised <= {e["id"] for e in listed}, listed
        for item in listed:
            assert item["status"] == "open", item
            assert item["queue"] in ("integration", "delivery", "finance"), item
            assert item["sla_due_at"] and item["group_key"] and item["count"] >= 1, item


def _salesforce_event(contract_id: str, number: str, billing_model: str = "Fixed Fee") -> str:
    """API.md's Salesforce event for the demo's terms, as JSON text: currency fields are JSON numbers
    with their cents (``300000.00``), as Salesforce sends them."""
    event = salesforce_event(
        Id=contract_id,
        ContractNumber=number,
        Billing_Model__c=billing_model,
        Signed_Document_URI__c=f"docs://sow/{number}.pdf",
    )
    return encode(event).decode()


def test_a_salesforce_event_maps_to_the_canonical_contract_and_a_bad_one_is_kept_as_an_exception(
    stack: Stack,
) -> None:
    def send(text: str, api: int) -> httpx.Response:
        headers = {**bearer(stack.keys["crm"]), "Content-Type": "application/json"}
        return stack.http.post(f"{stack.apis[api]}{SALESFORCE_EVENTS}", content=text.encode(), headers=headers)

    with stack.diagnosed():
        canonical_body = {**copy.deepcopy(ACME_CONTRACT), "external_id": "800XX0301", "number": "SOW-2026-301"}
        r = stack.post(CONTRACTS, canonical_body, key="crm", api=0)
        assert r.status_code == 201 and r.json()["status"] == "active", f"{r.status_code} {r.text}"
        canonical_id = r.json()["id"]

        event = _salesforce_event("800XX0302", "SOW-2026-302")
        assert '"Total_Value__c": 300000.00' in event and '"TotalPrice": 80000.00' in event, event
        r = send(event, api=1)
        assert r.status_code == 201, f"POST {SALESFORCE_EVENTS}: {r.status_code} {r.text}"
        registered = r.json()
        assert (registered["status"], registered["version"]) == ("active", 1), registered
        assert registered["id"] != canonical_id
        again = send(event, api=0)  # a redelivered event
        assert again.status_code == 200 and again.json()["id"] == registered["id"], again.text

        mapped = stack.contract(registered["id"], api=0)
        assert (mapped["source"], mapped["external_id"], mapped["number"]) == (
            "salesforce",
            "800XX0302",
            "SOW-2026-302",
        ), mapped
        assert _terms(mapped) == _terms(stack.contract(canonical_id, api=1))
        stack.wait_confirmed(registered["id"], 1)

        # An event that cannot be mapped: a 422 in Salesforce's words, the payload kept as an open exception.
        r = send(_salesforce_event("800XX0303", "SOW-2026-303", billing_model="Retainer"), api=1)
        assert r.status_code == 422, f"{r.status_code} {r.text}"
        assert r.headers["content-type"].startswith("application/problem+json"), r.headers
        problem = r.json()
        assert problem["code"] == "MAPPING_FAILED", problem
        locs = [[str(part) for part in e["loc"]] for e in problem["errors"]]
        assert any("Billing_Model__c" in ".".join(loc) for loc in locs), problem
        assert not any("billing_model" in loc for loc in locs), f"canonical names leaked: {problem}"
        assert "SOW-2026-303" not in [c["number"] for c in stack.pages(CONTRACTS)]

        failed = stack.pages("/process/v1/exceptions", code="MAPPING_FAILED")
        open_ = [e for e in failed if e["status"] == "open"]
        assert open_, failed
        if "exception_id" in problem:  # an extension: the work item that keeps this payload
            assert problem["exception_id"] in {e["id"] for e in open_}, (problem, failed)
        for item in open_:
            assert item["code"] == "MAPPING_FAILED" and item["queue"] == "integration", item
            assert item["sla_due_at"] and item["group_key"] and item["count"] >= 1, item
        listed = {e["id"] for e in stack.pages("/process/v1/exceptions", status="open")}
        assert {e["id"] for e in open_} <= listed
