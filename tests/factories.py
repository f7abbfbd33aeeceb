"""Request bodies and calls that tests build on: the seed's Acme contract, varied per test."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from typing import Any

import httpx

from app.dev.seed import ACME_CONTRACT

CONTRACTS = "/process/v1/contracts"


# Lumière SA, a French customer billed by DE01 (the demo's story 6): reverse charge needs its VAT id.
LUMIERE = dict(
    external_id="800XX0600",
    number="SOW-2026-060",
    legal_entity="DE01",
    currency="EUR",
    customer={"external_id": "LUMIERE-001", "name": "Lumière SA"},
    tax={"jurisdiction": "FR", "customer_tax_id": None},
    total_value="50000.00",
    reimbursable_expenses=[],
    milestones=[{"key": "M1", "name": "Audit", "amount": "50000.00", "due_date": "2026-04-30", "depends_on": []}],
)


def acme(**changes: Any) -> dict[str, Any]:
    """The Acme fixed-fee contract of the demo, with top-level fields replaced."""
    body = copy.deepcopy(ACME_CONTRACT)
    body.update(changes)
    return body


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def register(api: httpx.AsyncClient, key: str, body: dict[str, Any]) -> httpx.Response:
    return await api.post(CONTRACTS, json=body, headers=auth(key))


async def accepted_m1(api: httpx.AsyncClient, keys: dict[str, str], body: dict[str, Any] | None = None) -> str:
    """A contract registered (the Acme one unless ``body``) with its M1 accepted on 2026-03-28: its id."""
    registered = await register(api, keys["integration"], body or acme())
    assert registered.status_code == 201, registered.text
    contract_id: str = registered.json()["id"]
    accepted = await api.post(
        f"/process/v1/milestones/{contract_id}/M1/acceptance",
        json={"accepted_at": "2026-03-28T16:00:00Z"},
        headers=auth(keys["integration"]),
    )
    assert accepted.status_code == 200, accepted.text
    return contract_id


def unshare_problem() -> str | None:
    """Why a test cannot hide the local servers in a fresh network namespace (None when it can)."""
    if not sys.platform.startswith("linux"):
        return "network namespaces need Linux"
    if shutil.which("unshare") is None:
        return "unshare(1) is not installed"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare -n is not permitted here ({probe.stderr.strip()}): cannot hide the local servers"
    return None
