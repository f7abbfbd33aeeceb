"""/process/v1/billing-runs and /process/v1/invoices."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.http import Operation, client_of, endpoint, json_response, parse_body, parse_id, parse_query
from process_apis.billing import queries
from process_apis.billing.commands import BillingRunIn, InvoiceQuery

FINANCE = ("finance",)
READERS = ("finance", "project_manager", "customer", "bi")


def _customer_scope(request: Request) -> str | None:
    client = client_of(request)
    return client.customer_external_id if client.role == "customer" else None


async def create_billing_run(request: Request) -> Response:
    cmd = await parse_body(request, BillingRunIn)
    run = await request.app.state.services.billing.run_billing(cmd, client_of(request).name)
    return json_response(run, 201)


async def get_invoice(request: Request) -> Response:
    invoice_id = parse_id(request.path_params["invoice_id"], "invoice")
    async with request.app.state.services.db.connection() as conn:
        invoice = await queries.get_invoice(conn, invoice_id, _customer_scope(request))
    return json_response(invoice)


async def list_invoices(request: Request) -> Response:
    q = parse_query(request, InvoiceQuery)
    async with request.app.state.services.db.connection() as conn:
        page = await queries.list_invoices(conn, q.contract_id, q.status, q.limit, q.after, _customer_scope(request))
    return json_response(page)


async def retry_invoice(request: Request) -> Response:
    invoice_id = parse_id(request.path_params["invoice_id"], "invoice")
    invoice = await request.app.state.services.billing.retry_invoice(invoice_id, client_of(request).name)
    return json_response(invoice)


routes: list[Route] = [
    endpoint(
        "/process/v1/billing-runs",
        "POST",
        create_billing_run,
        Operation(
            "Package unbilled billable transactions into invoices",
            FINANCE,
            body=BillingRunIn,
            status=201,
            tags=("billing",),
        ),
    ),
    endpoint(
        "/process/v1/invoices",
        "GET",
        list_invoices,
        Operation("List invoices", READERS, query=InvoiceQuery, tags=("billing",)),
    ),
    endpoint(
        "/process/v1/invoices/{invoice_id}",
        "GET",
        get_invoice,
        Operation("An invoice with its lines and ERP reference", READERS, tags=("billing",), errors=(404,)),
    ),
    endpoint(
        "/process/v1/invoices/{invoice_id}/retry",
        "POST",
        retry_invoice,
        Operation(
            "Re-quote a blocked invoice or re-drive a failed posting", FINANCE, tags=("billing",), errors=(404, 409)
        ),
    ),
]
