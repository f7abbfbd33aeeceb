"""FX rates client."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import httpx

from app.errors import BackendUnavailable
from system_apis.http import path_segment as _q
from system_apis.http import raise_for_backend


class HttpFx:
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/")

    async def find_rate(self, on: date, base: str, quote: str) -> Decimal | None:
        if base == quote:
            return Decimal(1)
        try:
            response = await self._http.get(f"{self._base}/rates/{on.isoformat()}/{_q(base)}/{_q(quote)}")
        except httpx.HTTPError as exc:
            raise BackendUnavailable("fx", f"{type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            return None
        raise_for_backend("fx", response)
        return Decimal(str(response.json()["rate"]))
