"""The tax engine behind its circuit breaker: while it is open no quote is asked (the invoice stays a
draft and its job waits out the cool-down), and every answer feeds the circuit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TypeVar

from app.canonical import TaxJurisdiction, TaxQuote, TaxRejection
from app.circuit import SharedCircuit
from system_apis.tax.port import TaxPort

T = TypeVar("T")


class GuardedTax:
    def __init__(self, inner: TaxPort, circuit: SharedCircuit) -> None:
        self._inner, self._circuit = inner, circuit

    async def find_jurisdiction(self, code: str) -> TaxJurisdiction | None:
        return await self._call(lambda: self._inner.find_jurisdiction(code))

    async def quote(
        self,
        seller_country: str,
        jurisdiction: str,
        customer_tax_id: str | None,
        currency: str,
        lines: list[tuple[str, Decimal]],
    ) -> TaxQuote | TaxRejection:
        return await self._call(
            lambda: self._inner.quote(seller_country, jurisdiction, customer_tax_id, currency, lines)
        )

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        return await self._circuit.guard("tax", call)
