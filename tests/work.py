"""Builders and calls for the policy-engine acceptance tests: time-and-materials contracts, time and
expense entries, voids, billing runs, amendments and sandbox FX rates — all through the public API."""

from __future__ import annotations

import copy
import itertools
from decimal import Decimal
from typing import Any

import httpx

from tests.factories import acme, auth, register

TIME = "/process/v1/time-entries"
EXPENSES = "/process/v1/expenses"
RUNS = "/process/v1/billing-runs"
INVOICES = "/process/v1/invoices"
EXCEPTIONS = "/process/v1/exceptions"
PSA = "kantata"

_numbers = itertools.count(1)

CONSULTANT_200 = {"role": "consultant", "rate": "200.00", "effective_from": "2026-01-05"}


def tm(**changes: Any) -> dict[str, Any]:
    """Acme as a time-and-materials contract (US01, USD, US-NY 8.875 %, term 2026-01-05..2026-12-18):
    consultant at 200.00 from the start, no time cap, travel reimbursable up to 15,000.00, no milestones."""
    n = next(_numbers)
    body = acme(
        external_id=f"800TM{n:04d}",
        number=f"SOW-TM-{n}",
        billing_model="time_and_materials",
        total_value=None,
        milestones=[],
        time_cap=None,
        rate_card=[copy.deepcopy(CONSULTANT_200)],
    )
    body.update(copy.deepcopy(changes))
    return body


def fixed_fee(**changes: Any) -> dict[str, Any]:
    """The demo's Acme fixed-fee contract (300,000.00 in three milestones), under a fresh external id."""
    n = next(_numbers)
    body = acme(external_id=f"800FF{n:04d}", number=f"SOW-FF-{n}")
    body.update(copy.deepcopy(changes))
    return body


async def new_contract(api: httpx.AsyncClient, keys: dict[str, str], body: dict[str, Any]) -> str:
    response = await register(api, keys["integration"], body)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "active", response.text
    return str(response.json()["id"])


def time_entry(
    external_id: str,
    contract_id: str,
    work_date: str,
    hours: str,
    role: str = "consultant",
    approved: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "external_id": external_id,
        "contract_id": contract_id,
        "resource": {"external_id": "R-17", "name": "Ana Ruiz", "role": role},
        "work_date": work_date,
        "hours": hours,
        "description": "Workshop",
    }
    if approved:
        entry["approved_at"] = f"{work_date}T18:00:00Z"
    entry.update(extra)
    return entry


def expense(
    external_id: str,
    contract_id: str,
    incurred_on: str,
    amount: str,
    currency: str,
    category: str = "travel",
    approved: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "external_id": external_id,
        "contract_id": contract_id,
        "resource": {"external_id": "R-17", "name": "Ana Ruiz", "role": "consultant"},
        "category": category,
        "amount": amount,
        "currency": currency,
        "incurred_on": incurred_on,
    }
    if approved:
        entry["approved_at"] = f"{incurred_on}T18:00:00Z"
    entry.update(extra)
    return entry


async def post_raw(
    api: httpx.AsyncClient, key: str, entries: Any, path: str = TIME, source: str = PSA
) -> httpx.Response:
    return await api.post(path, json={"source": source, "entries": entries}, headers=auth(key))


async def post_time(
    api: httpx.AsyncClient, keys: dict[str, str], entries: list[dict[str, Any]], source: str = PSA
) -> list[dict[str, Any]]:
    response = await post_raw(api, keys["integration"], entries, TIME, source)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    assert len(results) == len(entries)
    return results


async def post_expenses(
    api: httpx.AsyncClient, keys: dict[str, str], entries: list[dict[str, Any]], source: str = PSA
) -> list[dict[str, Any]]:
    response = await post_raw(api, keys["integration"], entries, EXPENSES, source)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    assert len(results) == len(entries)
    return results


async def one_time(api: httpx.AsyncClient, keys: dict[str, str], entry: dict[str, Any]) -> dict[str, Any]:
    [result] = await post_time(api, keys, [entry])
    return result


async def one_expense(api: httpx.AsyncClient, keys: dict[str, str], entry: dict[str, Any]) -> dict[str, Any]:
    [result] = await post_expenses(api, keys, [entry])
    return result


async def get_entry(
    api: httpx.AsyncClient, keys: dict[str, str], external_id: str, path: str = TIME, source: str = PSA
) -> dict[str, Any]:
    response = await api.get(f"{path}/{source}/{external_id}", headers=auth(keys["admin"]))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def void(
    api: httpx.AsyncClient, keys: dict[str, str], external_id: str, path: str = TIME, source: str = PSA
) -> httpx.Response:
    return await api.delete(f"{path}/{source}/{external_id}", headers=auth(keys["integration"]))


def state(result: dict[str, Any]) -> tuple[Any, ...]:
    """What an entry's result says about its money: (status, billing, amount, held_amount, codes)."""
    return result["status"], result["billing"], result["amount"], result["held_amount"], result["codes"]


def money(result: dict[str, Any]) -> tuple[Any, ...]:
    """The same without the status (what the last write did): (billing, amount, held_amount, codes)."""
    return result["billing"], result["amount"], result["held_amount"], result["codes"]


def pending(entry: dict[str, Any]) -> list[tuple[Any, ...]]:
    """An entry's transactions as (kind, amount, date, status, reason), sorted."""
    return sorted((t["kind"], t["amount"], t["date"], t["status"], t["reason"]) for t in entry["transactions"])


async def billing_run(
    api: httpx.AsyncClient, keys: dict[str, str], as_of: str, contract_id: str | None = None
) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"as_of": as_of}
    if contract_id is not None:
        body["contract_id"] = contract_id
    response = await api.post(RUNS, json=body, headers=auth(keys["finance"]))
    assert response.status_code == 201, response.text
    invoices: list[dict[str, Any]] = response.json()["invoices"]
    return invoices


async def get_invoice(api: httpx.AsyncClient, keys: dict[str, str], invoice_id: str) -> dict[str, Any]:
    response = await api.get(f"{INVOICES}/{invoice_id}", headers=auth(keys["finance"]))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def amend(
    api: httpx.AsyncClient,
    keys: dict[str, str],
    contract_id: str,
    version: int,
    effective_date: str,
    **changes: Any,
) -> dict[str, Any]:
    response = await api.post(
        f"/process/v1/contracts/{contract_id}/amendments",
        json={"version": version, "effective_date": effective_date, "reason": "test", "changes": changes},
        headers=auth(keys["integration"]),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def accept(api: httpx.AsyncClient, keys: dict[str, str], contract_id: str, key: str, at: str) -> dict[str, Any]:
    response = await api.post(
        f"/process/v1/milestones/{contract_id}/{key}/acceptance",
        json={"accepted_at": at, "accepted_by": "client PM"},
        headers=auth(keys["integration"]),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def set_fx(sandbox: httpx.AsyncClient, day: str, base: str, quote: str, rate: str) -> None:
    """In the sandbox FX API: 1 ``base`` = ``rate`` ``quote`` on ``day``."""
    response = await sandbox.put(f"/fx/rates/{day}/{base}/{quote}", json={"rate": rate})
    assert response.status_code in (200, 201), response.text


async def exceptions(api: httpx.AsyncClient, keys: dict[str, str], code: str) -> list[dict[str, Any]]:
    response = await api.get(f"{EXCEPTIONS}?code={code}", headers=auth(keys["finance"]))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)
