"""The typed GraphQL context, built per request with its DataLoaders."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from strawberry.dataloader import DataLoader

from app.auth import ApiClient
from app.db import Database
from process_apis.billing import queries as billing_queries


@dataclass
class Context:
    client: ApiClient
    db: Database
    max_page_size: int = 100
    money: DataLoader[uuid.UUID, dict[str, Any] | None] = field(init=False)

    def __post_init__(self) -> None:
        self.money = DataLoader(load_fn=self._load_money)

    @property
    def customer_scope(self) -> str | None:
        return self.client.customer_external_id if self.client.role == "customer" else None

    async def _load_money(self, ids: list[uuid.UUID]) -> list[dict[str, Any] | None]:
        async with self.db.connection() as conn:
            found = await billing_queries.contract_money(conn, ids)
        return [found.get(i) for i in ids]
