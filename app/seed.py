"""The demo firm (SCENARIO.md): Globex's legal entities, ERP customers, demo keys, and the Acme contract.

Seeding goes through the same doors as production traffic: legal entities through SQL
master data, ERP customers through the ERP's API, the contract through psbridge's own API.
Every step is idempotent, so ``make run`` may run it any number of times.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from app.auth import create_client, find_client_by_key
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
DEMO_CLIENTS = {
    "demo-admin": ("admin", None),
    "demo-integration": ("integration", None),
    "demo-finance": ("finance", None),
    "demo-pm": ("project_manager", None),
    "demo-bi": ("bi", None),
    "demo-acme-portal": ("customer", "ACME-001"),
}

ACME_CONTRACT: dict[str, Any] = {
    "source": "salesforce",
    "external_id": "800XX0001",
    "number": "SOW-2026-014",
    "customer": {"external_id": "ACME-001", "name": "Acme Holdings"},
    "legal_entity": "US01",
    "currency": "USD",
    "billing_model": "fixed_fee",
    "total_value": "300000.00",
    "start_date": "2026-01-05",
    "end_date": "2026-12-18",
    "rate_card": [{"role": "consultant", "rate": "200.00", "effective_from": "2026-01-05"}],
    "time_cap": None,
    "reimbursable_expenses": [{"category": "travel", "cap": "15000.00"}],
    "milestones": [
        {"key": "M1", "name": "Discovery", "amount": "100000.00", "due_date": "2026-03-31", "depends_on": []},
        {"key": "M2", "name": "Design", "amount": "120000.00", "due_date": "2026-06-30", "depends_on": ["M1"]},
        {"key": "M3", "name": "Rollout", "amount": "80000.00", "due_date": "2026-10-31", "depends_on": ["M2"]},
    ],
    "tax": {"jurisdiction": "US-NY", "customer_tax_id": None},
    "document": {"uri": "docs://sow/SOW-2026-014.pdf", "sha256": None},
    "signed_at": "2026-01-02T10:00:00Z",
}


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


async def demo_keys(db: Database, keys_file: Path) -> dict[str, str]:
    """Reuse the demo keys recorded in ``keys_file`` while they still work; mint the missing ones."""
    known: dict[str, str] = json.loads(keys_file.read_text()) if keys_file.exists() else {}
    keys = {}
    async with db.transaction() as conn:
        for name, (role, customer) in DEMO_CLIENTS.items():
            key = known.get(name)
            if key is None or await find_client_by_key(conn, key) is None:
                _, key = await create_client(conn, name, role, customer)
            keys[name] = key
    keys_file.parent.mkdir(parents=True, exist_ok=True)
    keys_file.write_text(json.dumps(keys, indent=2))
    keys_file.chmod(0o600)
    return keys


async def seed_contracts(http: httpx.AsyncClient, api_url: str, integration_key: str) -> dict[str, Any]:
    response = await http.post(
        f"{api_url.rstrip('/')}/process/v1/contracts",
        json=ACME_CONTRACT,
        headers={"Authorization": f"Bearer {integration_key}"},
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result
