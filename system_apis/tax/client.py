"""Tax engine client: jurisdictions and quotes."""

from __future__ import annotations

from decimal import Decimal

import httpx

from app.canonical import TaxJurisdiction, TaxLineQuote, TaxQuote, TaxRejection
from app.errors import BackendUnavailable
from system_apis.http import path_segment as _q
from system_apis.http import raise_for_backend


class HttpTax:
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")

    async def find_jurisdiction(self, code: str) -> TaxJurisdiction | None:
        response = await self._send("GET", f"/jurisdictions/{_q(code)}")
        if response.status_code == 404:
            return None
        self._check(response)
        body = response.json()
        return TaxJurisdiction(body["code"], body["country"], Decimal(body["rate"]))

    async def quote(
        self,
        seller_country: str,
        jurisdiction: str,
        customer_tax_id: str | None,
        currency: str,
        lines: list[tuple[str, Decimal]],
    ) -> TaxQuote | TaxRejection:
        payload = {
            "seller_country": seller_country,
            "jurisdiction": jurisdiction,
            "customer_tax_id": customer_tax_id,
            "currency": currency,
            "lines": [{"key": key, "net": format(net, "f")} for key, net in lines],
        }
        response = await self._send("POST", "/quotes", payload)
        if response.status_code in (404, 422):
            body = response.json()
            return TaxRejection(str(body.get("code", "TAX_VALIDATION_FAILED")), str(body.get("detail", "")))
        self._check(response)
        body = response.json()
        return TaxQuote(
            treatment=body["treatment"],
            rate=Decimal(body["rate"]),
            note=body.get("note"),
            lines=[
                TaxLineQuote(line["key"], Decimal(line["net"]), Decimal(line["rate"]), Decimal(line["tax"]))
                for line in body["lines"]
            ],
        )

    async def _send(self, method: str, path: str, body: object = None) -> httpx.Response:
        try:
            return await self._http.request(method, self._base + path, json=body)
        except httpx.HTTPError as exc:
            raise BackendUnavailable("tax", f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _check(response: httpx.Response) -> None:
        raise_for_backend("tax", response)
        if response.status_code >= 400:
            raise BackendUnavailable("tax", f"HTTP {response.status_code}: {response.text[:300]}")
