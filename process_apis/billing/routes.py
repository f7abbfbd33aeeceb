"""/process/v1/billing-runs and /process/v1/invoices."""

from __future__ import annotations

import uuid

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.access import Right
from app.http import Operation, endpoint, json_response, parse_body, parse_path, parse_query, principal_of
from process_apis.billing import queries
from process_apis.billing.commands import BillingRunIn
from process_apis.billing.views import BillingRunView, InvoiceDetail, InvoicePage


class InvoicePath(BaseModel):
    invoice_id: uuid.UUID


async def create_billing_run(request: Request) -> Response:
    cmd = await parse_body(request, BillingRunIn)
    principal = principal_of(request)
    run = await request.app.state.services.billing.run_billing(cmd, principal.name)
    async with request.app.state.services.db.connection() as conn:
        invoices = await queries.invoice_summaries(conn, run.invoice_ids, principal)
    return json_response(BillingRunView(id=run.id, as_of=run.as_of, invoices=invoices), 201)


async def get_invoice(request: Request) -> Response:
    path = parse_path(request, InvoicePath)
    async with request.app.state.services.db.connection() as conn:
        invoice = await queries.get_invoice(conn, path.invoice_id, principal_of(request))
    return json_response(invoice)


async def list_invoices(request: Request) -> Response:
    q = parse_query(request, queries.InvoiceFilter)
    async with request.app.state.services.db.connection() as conn:
        page = await queries.list_invoices(conn, principal_of(request), q)
    return json_response(page)


async def retry_invoice(request: Request) -> Response:
    path = parse_path(request, InvoicePath)
    principal = principal_of(request)
    await request.app.state.services.billing.retry_invoice(path.invoice_id, principal.name)
    async with request.app.state.services.db.connection() as conn:
        invoice = await queries.get_invoice(conn, path.invoice_id, principal)
    return json_response(invoice)


routes: list[Route] = [
    endpoint(
        "/process/v1/billing-runs",
        "POST",
        create_billing_run,
        Operation(
            "createBillingRun",
            "Package unbilled billable transactions into invoices",
            Right.RUN_BILLING,
            body=BillingRunIn,
            response=BillingRunView,
            status=201,
            tags=("billing",),
            links={
                "getInvoice": {"invoice_id": "$response.body#/invoices/0/id"},
                "retryInvoice": {"invoice_id": "$response.body#/invoices/0/id"},
            },
            errors={422: ("VALIDATION_FAILED",)},
        ),
    ),
    endpoint(
        "/process/v1/invoices",
        "GET",
        list_invoices,
        Operation(
            "listInvoices",
            "List invoices",
            Right.READ_BILLING,
            query=queries.InvoiceFilter,
            response=InvoicePage,
            tags=("billing",),
            links={"getInvoice": {"invoice_id": "$response.body#/items/0/id"}},
            errors={422: ("VALIDATION_FAILED", "INVALID_CURSOR")},
        ),
    ),
    endpoint(
        "/process/v1/invoices/{invoice_id}",
        "GET",
        get_invoice,
        Operation(
            "getInvoice",
            "An invoice with its lines and ERP reference",
            Right.READ_BILLING,
            path=InvoicePath,
            response=InvoiceDetail,
            tags=("billing",),
            errors={404: ("UNKNOWN_INVOICE",)},
        ),
    ),
    endpoint(
        "/process/v1/invoices/{invoice_id}/retry",
        "POST",
        retry_invoice,
        Operation(
            "retryInvoice",
            "Re-quote a blocked invoice or re-drive a failed posting",
            Right.RUN_BILLING,
            path=InvoicePath,
            response=InvoiceDetail,
            tags=("billing",),
            errors={404: ("UNKNOWN_INVOICE",), 409: ("NOT_RETRYABLE",)},
        ),
    ),
]
