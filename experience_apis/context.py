"""The typed GraphQL context, built per request with its DataLoaders (one query per field per request)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from strawberry.dataloader import DataLoader

from app.auth import ApiClient
from app.db import Connection, Database
from process_apis.billing import queries as billing_queries
from process_apis.contracts import queries as contract_queries

Batch = Callable[[Connection, list[uuid.UUID]], Awaitable[dict[uuid.UUID, Any]]]


@dataclass
class Context:
    client: ApiClient
    db: Database
    max_page_size: int = 100
    money: DataLoader[uuid.UUID, dict[str, Any] | None] = field(init=False)
    milestones: DataLoader[uuid.UUID, list[dict[str, Any]]] = field(init=False)
    invoices: DataLoader[uuid.UUID, list[dict[str, Any]]] = field(init=False)

    def __post_init__(self) -> None:
        self.money = DataLoader(load_fn=self._batch(billing_queries.contract_money, None))
        self.milestones = DataLoader(load_fn=self._batch(contract_queries.milestones_by_contract, []))
        self.invoices = DataLoader(load_fn=self._batch(billing_queries.invoices_by_contract, []))

    @property
    def customer_scope(self) -> str | None:
        return self.client.customer_external_id if self.client.role == "customer" else None

    def _batch(self, query: Batch, missing: Any) -> Callable[[list[uuid.UUID]], Awaitable[list[Any]]]:
        async def load(ids: list[uuid.UUID]) -> list[Any]:
            async with self.db.connection() as conn:
                found = await query(conn, ids)
            return [found.get(i, missing) for i in ids]

        return load
