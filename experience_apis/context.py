"""The typed GraphQL context, built per request with its DataLoaders (one query per field per request).

Every loader reads through the request's ``Principal``: the SQL of each batch filters by it, so
a nested field can never reach past the scope of the object it hangs from.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from strawberry.dataloader import DataLoader

from app.access import Principal
from app.db import Connection, Database
from process_apis.billing import queries as billing_queries
from process_apis.billing.queries import ContractMoney
from process_apis.billing.views import InvoiceSummary
from process_apis.contracts import queries as contract_queries
from process_apis.contracts.views import MilestoneView

V = TypeVar("V")
Batch = Callable[[Connection, list[uuid.UUID], Principal], Awaitable[dict[uuid.UUID, Any]]]


@dataclass
class Context:
    principal: Principal
    db: Database
    max_page_size: int = 100
    money: DataLoader[uuid.UUID, ContractMoney | None] = field(init=False)
    milestones: DataLoader[uuid.UUID, list[MilestoneView]] = field(init=False)
    invoices: DataLoader[uuid.UUID, list[InvoiceSummary]] = field(init=False)

    def __post_init__(self) -> None:
        self.money = DataLoader(load_fn=self._batch(billing_queries.contract_money, None))
        self.milestones = DataLoader(load_fn=self._batch(contract_queries.milestones_by_contract, []))
        self.invoices = DataLoader(load_fn=self._batch(billing_queries.invoices_by_contract, []))

    def _batch(self, query: Batch, missing: Any) -> Callable[[list[uuid.UUID]], Awaitable[list[Any]]]:
        async def load(ids: list[uuid.UUID]) -> list[Any]:
            async with self.db.connection() as conn:
                found = await query(conn, ids, self.principal)
            return [found.get(i, missing) for i in ids]

        return load
