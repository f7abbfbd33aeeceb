"""NetSuite-shaped REST client: upserts by external id, so a retried call never duplicates."""

from __future__ import annotations

import httpx

from app.canonical import ErpCustomer, InvoicePosting, ProjectPlan
from app.errors import BackendUnavailable
from system_apis.erp import mapping
from system_apis.erp.port import ErpRejected
from system_apis.http import path_segment as _q
from system_apis.http import raise_for_backend

_RECORDS = "/services/rest/record/v1"


def _check(response: httpx.Response) -> None:
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    details = body.get("o:errorDetails") or [{}] if isinstance(body, dict) else [{}]
    code = str(details[0].get("o:errorCode", "")) if details else ""
    # NetSuite also signals throttling as 400 CONCURRENCY_LIMIT_EXCEEDED.
    if code == "CONCURRENCY_LIMIT_EXCEEDED":
        raise BackendUnavailable("erp", f"HTTP {response.status_code} {code}")
    raise_for_backend("erp", response)
    if response.status_code >= 400:
        raise ErpRejected(code or f"HTTP_{response.status_code}", str(details[0].get("detail", response.text[:300])))


class HttpErp:
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        self._http = http
        self._base = base_url.rstrip("/") + _RECORDS

    async def find_customer(self, external_id: str) -> ErpCustomer | None:
        response = await self._get(f"/customer/eid:{_q(external_id)}")
        if response.status_code == 404:
            return None
        _check(response)
        return mapping.customer_from_record(response.json())

    async def upsert_document(self, posting: InvoicePosting) -> str:
        path = f"/{mapping.record_type(posting.kind)}/eid:{_q(posting.external_id)}"
        return await self._put(path, mapping.document_to_record(posting))

    async def upsert_billing_schedule(self, plan: ProjectPlan) -> str:
        return await self._put(f"/job/eid:{_q(plan.contract_id)}", mapping.plan_to_job_record(plan))

    async def _get(self, path: str) -> httpx.Response:
        try:
            return await self._http.get(self._base + path)
        except httpx.HTTPError as exc:
            raise BackendUnavailable("erp", f"{type(exc).__name__}: {exc}") from exc

    async def _put(self, path: str, record: dict[str, object]) -> str:
        try:
            response = await self._http.put(self._base + path, json=record)
        except httpx.HTTPError as exc:
            raise BackendUnavailable("erp", f"{type(exc).__name__}: {exc}") from exc
        _check(response)
        erp_id = mapping.id_from_location(response.headers.get("location"))
        if erp_id is None:
            # No Location: read the record back to learn its internal id.
            found = await self._get(path)
            _check(found)
            erp_id = str(found.json()["id"])
        return erp_id
