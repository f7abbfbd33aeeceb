"""The tax engine as process APIs see it."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from app.canonical import TaxJurisdiction, TaxQuote, TaxRejection


class TaxPort(Protocol):
    """Refusals of the data come back as values: ``None`` for an unknown jurisdiction, ``TaxRejection``
    for a quote the engine refuses (its 422, or any other refusal). Everything else the engine does
    (unreachable, throttling, a 5xx, a 404 from a route that should exist) raises ``BackendUnavailable``:
    the quote is tried again later and the invoice stays a draft."""

    async def find_jurisdiction(self, code: str) -> TaxJurisdiction | None: ...

    async def quote(
        self,
        seller_country: str,
        jurisdiction: str,
        customer_tax_id: str | None,
        currency: str,
        lines: list[tuple[str, Decimal]],
    ) -> TaxQuote | TaxRejection:
        """Per-line rates for a supply; a ``TaxRejection`` when the rules refuse it as described."""
        ...
