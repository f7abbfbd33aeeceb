"""Tax engine client: jurisdictions and quotes."""

from __future__ import annotations

from decimal import Decimal

import httpx

from app.canonical import TaxJurisdiction, TaxLineQuote, TaxQuote, TaxRejection
from app.errors import BackendRejected
from system_apis.http import Outbound
from system_apis.http import path_segment as _q


class HttpTax:
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self._out = Outbound(http, "tax", base_url)

    async def find_jurisdiction(self, code: str) -> TaxJurisdiction | None:
        response = await self._out.send("GET", f"/jurisdictions/{_q(code)}", expect={404})
        if response.status_code == 404:
            return None
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
        # 422 is the engine refusing the data (a tax id, a jurisdiction): the invoice is blocked. A 404
        # here is a wrong route, not an answer: retried like an outage.
        try:
            response = await self._out.send("POST", "/quotes", payload, expect={422})
        except BackendRejected as exc:  # refused in another way (a 400, credentials): blocked the same
            return TaxRejection(exc.vendor_code, exc.vendor_detail)
        if response.status_code == 422:
            body = response.json()
            return TaxRejection(str(body.get("code", "TAX_VALIDATION_FAILED")), str(body.get("detail", "")))
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
