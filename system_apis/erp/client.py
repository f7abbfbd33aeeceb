"""NetSuite-shaped REST client: upserts by external id, so a retried call never duplicates."""

from __future__ import annotations

import httpx

from app.canonical import ErpCustomer, ErpDocument, InvoicePosting, ProjectPlan
from system_apis.erp import mapping
from system_apis.http import Outbound
from system_apis.http import path_segment as _q

_RECORDS = "/services/rest/record/v1"
_PAGE = 1000


def _netsuite_error(response: httpx.Response) -> tuple[str, str]:
    """NetSuite's ``o:errorDetails``: the first one's code and detail."""
    try:
        body = response.json()
    except ValueError:
        body = None
    details = body.get("o:errorDetails") if isinstance(body, dict) else None
    if isinstance(details, list) and details and isinstance(details[0], dict):
        first = details[0]
        return str(first.get("o:errorCode") or f"HTTP_{response.status_code}"), str(first.get("detail", ""))
    return f"HTTP_{response.status_code}", ""


class HttpErp:
    def __init__(self, http: httpx.AsyncClient, base_url: str) -> None:
        # NetSuite also signals throttling as 400 CONCURRENCY_LIMIT_EXCEEDED.
        self._out = Outbound(
            http, "erp", base_url.rstrip("/") + _RECORDS, _netsuite_error, {"CONCURRENCY_LIMIT_EXCEEDED"}
        )

    async def find_customer(self, external_id: str) -> ErpCustomer | None:
        response = await self._out.send("GET", f"/customer/eid:{_q(external_id)}", expect={404})
        if response.status_code == 404:
            return None
        return mapping.customer_from_record(response.json())

    async def upsert_document(self, posting: InvoicePosting) -> str:
        path = f"/{mapping.record_type(posting.kind)}/eid:{_q(posting.external_id)}"
        return await self._put(path, mapping.document_to_record(posting))

    async def upsert_billing_schedule(self, plan: ProjectPlan) -> str:
        return await self._put(f"/job/eid:{_q(plan.contract_id)}", mapping.plan_to_job_record(plan))

    async def list_documents(self) -> list[ErpDocument]:
        found: list[ErpDocument] = []
        for kind in ("invoice", "credit_note"):
            offset = 0
            while True:
                path = f"/{mapping.record_type(kind)}?limit={_PAGE}&offset={offset}"
                page = (await self._out.send("GET", path)).json()
                found += [mapping.document_from_record(kind, r) for r in page["items"]]
                offset += len(page["items"])
                if not page.get("hasMore") or not page["items"]:
                    break
        return found

    async def find_document(self, kind: str, external_id: str) -> ErpDocument | None:
        """The invoice or credit memo keyed by our id, or None when the ERP has none."""
        response = await self._out.send("GET", f"/{mapping.record_type(kind)}/eid:{_q(external_id)}", expect={404})
        return None if response.status_code == 404 else mapping.document_from_record(kind, response.json())

    async def _put(self, path: str, record: dict[str, object]) -> str:
        response = await self._out.send("PUT", path, record)
        erp_id = mapping.id_from_location(response.headers.get("location"))
        if erp_id is None:
            # No Location: read the record back to learn its internal id.
            found = await self._out.send("GET", path)
            erp_id = str(found.json()["id"])
        return erp_id
