"""The ERP as process APIs see it (canonical words, no vendor JSON)."""

from __future__ import annotations

from typing import Protocol

from app.canonical import ErpCustomer, InvoicePosting, ProjectPlan


class ErpRejected(Exception):
    """The ERP refused the record itself (not a throttle or outage): retrying will not help."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


class ErpPort(Protocol):
    async def find_customer(self, external_id: str) -> ErpCustomer | None: ...

    async def upsert_document(self, posting: InvoicePosting) -> str:
        """Create or replace the invoice/credit memo keyed by its external id; returns the ERP id."""
        ...

    async def upsert_billing_schedule(self, plan: ProjectPlan) -> str: ...
