"""Salesforce-like CRM client."""

from __future__ import annotations

from decimal import Decimal

import httpx

from app.errors import BackendUnavailable
from system_apis.http import path_segment as _q
from system_apis.http import raise_for_backend


class HttpCrm:
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")

    async def report_billing(
        self, contract_external_id: str, invoice_id: str, status: str, amount: Decimal, currency: str
    ) -> None:
        body = {"invoice_id": invoice_id, "status": status, "amount": format(amount, "f"), "currency": currency}
        try:
            response = await self._http.post(
                f"{self._base}/contracts/{_q(contract_external_id)}/billing-status", json=body
            )
        except httpx.HTTPError as exc:
            raise BackendUnavailable("crm", f"{type(exc).__name__}: {exc}") from exc
        raise_for_backend("crm", response)
        if response.status_code >= 400:
            raise BackendUnavailable("crm", f"HTTP {response.status_code}: {response.text[:300]}")
