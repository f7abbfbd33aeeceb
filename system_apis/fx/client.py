"""FX rates client."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import httpx

from system_apis.http import Outbound
from system_apis.http import path_segment as _q


class HttpFx:
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self._out = Outbound(http, "fx", base_url)

    async def find_rate(self, on: date, base: str, quote: str) -> Decimal | None:
        if base == quote:
            return Decimal(1)
        response = await self._out.send("GET", f"/rates/{on.isoformat()}/{_q(base)}/{_q(quote)}", expect={404})
        if response.status_code == 404:
            return None  # no rate for that day: the expense waits for one
        return Decimal(str(response.json()["rate"]))
