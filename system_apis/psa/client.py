"""Kantata-like PSA client."""

from __future__ import annotations

from typing import Any

import httpx

from app.canonical import BilledItem, ProjectPlan
from app.errors import BackendUnavailable
from app.money import to_str
from system_apis.http import raise_for_backend


def _project_body(plan: ProjectPlan) -> dict[str, Any]:
    return {
        "external_id": plan.contract_id,
        "name": f"{plan.contract_number} — {plan.customer_name}",
        "customer": plan.customer_external_id,
        "billing_model": plan.billing_model,
        "currency": plan.currency,
        "budget": to_str(plan.budget),
        "start_date": plan.start_date.isoformat(),
        "end_date": plan.end_date.isoformat(),
        "plan_version": plan.version,
        "milestones": [
            {
                "key": m.key,
                "name": m.name,
                "amount": to_str(m.amount),
                "due_date": m.due_date.isoformat() if m.due_date else None,
                "depends_on": m.depends_on,
            }
            for m in plan.milestones
        ],
    }


class HttpPsa:
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")

    async def provision_project(self, plan: ProjectPlan) -> str:
        response = await self._call("POST", "/projects", _project_body(plan))
        return str(response.json()["id"])

    async def mark_billed(self, items: list[BilledItem]) -> None:
        body = {
            "items": [
                {"type": i.type, "external_id": i.external_id, "invoice_id": i.invoice_id, "status": "billed"}
                for i in items
            ]
        }
        await self._call("POST", "/billing-status", body)

    async def _call(self, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            response = await self._http.request(method, self._base + path, json=body)
        except httpx.HTTPError as exc:
            raise BackendUnavailable("psa", f"{type(exc).__name__}: {exc}") from exc
        raise_for_backend("psa", response)
        if response.status_code >= 400:
            raise BackendUnavailable("psa", f"HTTP {response.status_code}: {response.text[:300]}")
        return response
