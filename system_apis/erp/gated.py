"""The ERP port behind its circuit breaker and the shared throttle: while the circuit is open no call
is made (callers get the time left); otherwise every call from every worker takes a slot first, and
its outcome feeds the circuit.

Each call is counted by outcome (``psbridge_erp_requests_total``) and its wait for a slot timed
(``psbridge_erp_throttle_wait_seconds``), in whichever process makes it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from app.canonical import ErpCustomer, ErpDocument, InvoicePosting, ProjectPlan
from app.circuit import SharedCircuit
from app.errors import BackendRejected, BackendUnavailable
from app.observability import ERP_REQUESTS_TOTAL, ERP_THROTTLE_WAIT_SECONDS
from app.throttle import SharedThrottle
from system_apis.erp.port import ErpPort

T = TypeVar("T")


class ThrottledErp:
    def __init__(self, inner: ErpPort, throttle: SharedThrottle, circuit: SharedCircuit) -> None:
        self._inner = inner
        self._throttle = throttle
        self._circuit = circuit

    async def find_customer(self, external_id: str) -> ErpCustomer | None:
        return await self._call(lambda: self._inner.find_customer(external_id))

    async def upsert_document(self, posting: InvoicePosting) -> str:
        return await self._call(lambda: self._inner.upsert_document(posting))

    async def upsert_billing_schedule(self, plan: ProjectPlan) -> str:
        return await self._call(lambda: self._inner.upsert_billing_schedule(plan))

    async def list_documents(self) -> list[ErpDocument]:
        # Paged reads under one slot: a reconciliation is one caller, not a burst of them.
        return await self._call(self._inner.list_documents)

    async def find_document(self, kind: str, external_id: str) -> ErpDocument | None:
        return await self._call(lambda: self._inner.find_document(kind, external_id))

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            result = await self._circuit.guard("erp", lambda: self._throttled(call))
        except BackendRejected:
            ERP_REQUESTS_TOTAL.labels("rejected").inc()
            raise
        except BackendUnavailable as exc:
            ERP_REQUESTS_TOTAL.labels("circuit_open" if exc.circuit_open else "unavailable").inc()
            raise
        except Exception:
            ERP_REQUESTS_TOTAL.labels("error").inc()
            raise
        ERP_REQUESTS_TOTAL.labels("ok").inc()
        return result

    async def _throttled(self, call: Callable[[], Awaitable[T]]) -> T:
        async with self._throttle.slot() as waited:
            ERP_THROTTLE_WAIT_SECONDS.observe(waited)
            return await call()
