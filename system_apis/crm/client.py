"""Salesforce-like CRM client."""

from __future__ import annotations

from decimal import Decimal

import httpx

from system_apis.http import Outbound
from system_apis.http import path_segment as _q


class HttpCrm:
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self._out = Outbound(http, "crm", base_url)

    async def report_billing(
        self, contract_external_id: str, invoice_id: str, status: str, amount: Decimal, currency: str
    ) -> None:
        body = {"invoice_id": invoice_id, "status": status, "amount": format(amount, "f"), "currency": currency}
        await self._out.send("POST", f"/contracts/{_q(contract_external_id)}/billing-status", body)
