"""Kantata-like PSA client."""

from __future__ import annotations

from typing import Any

import httpx

from app.canonical import BilledItem, ProjectPlan
from app.money import to_str
from system_apis.http import Outbound


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
        self._out = Outbound(http, "psa", base_url)

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
        return await self._out.send(method, path, body)
