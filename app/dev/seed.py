"""The demo firm, Globex Consulting: its legal entities, ERP customers, demo keys, and the Acme contract.

Seeding goes through the same doors as production traffic: legal entities through SQL
master data, ERP customers through the ERP's API, the contract through psbridge's own API.
Every step is idempotent, so ``make run`` may run it any number of times. The order matters
for keys: staff keys first (the integration key registers the contract), the customer portal
key last, since psbridge refuses a key for a customer it does not know yet.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.auth import create_client, find_client_by_key
from app.canonical.contract import ACME_EXAMPLE
from app.db import Database
from process_apis.master_data import store as master_data
from process_apis.master_data.commands import LegalEntityIn

LEGAL_ENTITIES = {
    "US01": LegalEntityIn(
        name="Globex Consulting LLC", country="US", functional_currency="USD", allowed_currencies=["USD", "CAD"]
    ),
    "GB01": LegalEntityIn(
        name="Globex Consulting UK Ltd",
        country="GB",
        functional_currency="GBP",
        allowed_currencies=["GBP", "EUR", "USD"],
    ),
    "DE01": LegalEntityIn(
        name="Globex Consulting GmbH", country="DE", functional_currency="EUR", allowed_currencies=["EUR"]
    ),
}
ERP_CUSTOMERS = {
    "ACME-001": ("Acme Holdings", "US01"),
    "NORTHWIND-001": ("Northwind Traders", "US01"),
    "TYRELL-UK-001": ("Tyrell UK Ltd", "GB01"),
    "LUMIERE-001": ("Lumière SA", "DE01"),
}


@dataclass(frozen=True)
class DemoClient:
    role: str
    customers: Sequence[str] = ()
    system: str | None = None  # the system an integration key speaks for (field ownership)


# Keys that need nothing in psbridge yet, minted before the contract is seeded.
STAFF_CLIENTS: Mapping[str, DemoClient] = {
    "demo-admin": DemoClient("admin"),
    "demo-integration": DemoClient("integration"),
    "demo-crm": DemoClient("integration", system="crm"),  # Salesforce: contracts and amendments
    "demo-psa": DemoClient("integration", system="psa"),  # Kantata: time, expenses, acceptances
    "demo-finance": DemoClient("finance"),
    "demo-pm": DemoClient("project_manager"),
    "demo-bi": DemoClient("bi"),
}
# Keys bound to a customer: minted once the contract has made the customer known to psbridge.
PORTAL_CLIENTS: Mapping[str, DemoClient] = {
    "demo-acme-portal": DemoClient("customer", ("ACME-001",)),
}
DEMO_CLIENTS: Mapping[str, DemoClient] = {**STAFF_CLIENTS, **PORTAL_CLIENTS}

# The Acme SOW of the demo story: the same document the API docs show as ContractIn's example.
ACME_CONTRACT: dict[str, Any] = copy.deepcopy(ACME_EXAMPLE)


async def seed_master_data(db: Database) -> None:
    async with db.transaction() as conn:
        for code, entity in LEGAL_ENTITIES.items():
            await master_data.upsert_legal_entity(conn, code, entity)


async def seed_erp_customers(http: httpx.AsyncClient, erp_url: str) -> None:
    for external_id, (name, subsidiary) in ERP_CUSTOMERS.items():
        response = await http.put(
            f"{erp_url.rstrip('/')}/services/rest/record/v1/customer/eid:{external_id}",
            json={"companyName": name, "subsidiary": subsidiary},
        )
        response.raise_for_status()


async def demo_keys(db: Database, keys_file: Path, clients: Mapping[str, DemoClient]) -> dict[str, str]:
    """The keys of ``clients``: those recorded in ``keys_file`` while they still work, new ones otherwise.

    ``keys_file`` keeps every demo key recorded so far (of these clients and of the others).
    """
    known: dict[str, str] = json.loads(keys_file.read_text()) if keys_file.exists() else {}
    keys = {}
    async with db.transaction() as conn:
        for name, client in clients.items():
            key = known.get(name)
            if key is None or await find_client_by_key(conn, key) is None:
                _, key = await create_client(conn, name, client.role, customers=client.customers, system=client.system)
            keys[name] = key
    recorded = {**known, **keys}
    in_demo_order = [*(n for n in DEMO_CLIENTS if n in recorded), *(n for n in recorded if n not in DEMO_CLIENTS)]
    _write_private(keys_file, json.dumps({name: recorded[name] for name in in_demo_order}, indent=2))
    return keys


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (it holds keys), atomically: the old one or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)  # a leftover could have looser permissions, which O_CREAT would keep
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


async def seed_contracts(http: httpx.AsyncClient, api_url: str, integration_key: str) -> dict[str, Any]:
    response = await http.post(
        f"{api_url.rstrip('/')}/process/v1/contracts",
        json=ACME_CONTRACT,
        headers={"Authorization": f"Bearer {integration_key}"},
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result
