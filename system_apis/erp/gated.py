"""The ERP port behind the shared throttle: every call from every worker takes a slot first."""

from __future__ import annotations

from app.canonical import ErpCustomer, InvoicePosting, ProjectPlan
from app.throttle import SharedThrottle
from system_apis.erp.port import ErpPort


class ThrottledErp:
    def __init__(self, inner: ErpPort, throttle: SharedThrottle) -> None:
        self._inner = inner
        self._throttle = throttle

    async def find_customer(self, external_id: str) -> ErpCustomer | None:
        async with self._throttle.slot():
            return await self._inner.find_customer(external_id)

    async def upsert_document(self, posting: InvoicePosting) -> str:
        async with self._throttle.slot():
            return await self._inner.upsert_document(posting)

    async def upsert_billing_schedule(self, plan: ProjectPlan) -> str:
        async with self._throttle.slot():
            return await self._inner.upsert_billing_schedule(plan)
