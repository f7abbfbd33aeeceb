"""The ERP as process APIs see it (canonical words, no vendor JSON)."""

from __future__ import annotations

from typing import Protocol

from app.canonical import ErpCustomer, ErpDocument, InvoicePosting, ProjectPlan


class ErpPort(Protocol):
    """Every call raises ``BackendUnavailable`` (retryable; ``ambiguous`` when a write may have landed)
    or ``BackendRejected`` (the ERP refused the record: retrying will not help)."""

    async def find_customer(self, external_id: str) -> ErpCustomer | None: ...

    async def upsert_document(self, posting: InvoicePosting) -> str:
        """Create or replace the invoice/credit memo keyed by its external id; returns the ERP id."""
        ...

    async def upsert_billing_schedule(self, plan: ProjectPlan) -> str: ...

    async def list_documents(self) -> list[ErpDocument]:
        """Every invoice and credit memo the ERP holds (reconciliation reads them all, page by page)."""
        ...

    async def find_document(self, kind: str, external_id: str) -> ErpDocument | None:
        """The invoice or credit memo keyed by our id (after an ambiguous post, a lookup), or None."""
        ...
