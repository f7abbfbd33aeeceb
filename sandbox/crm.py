"""Salesforce-like CRM: receives the billing status of each contract's invoices."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from sandbox._http import error_handlers, parse_decimal, plain_error, read_object, req_str
from sandbox.middleware import wrap_backend
from sandbox.state import SandboxState

__all__ = ["create_app"]


def create_app(state: SandboxState) -> ASGIApp:
    crm = _Crm(state)
    path = "/contracts/{external_id}/billing-status"
    routes = [
        Route(path, crm.record_billing_status, methods=["POST"]),
        Route(path, crm.list_billing_status, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers=error_handlers(plain_error))
    return wrap_backend(app, "crm", state, plain_error)


class _Crm:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def record_billing_status(self, request: Request) -> Response:
        body = await read_object(request)
        invoice_id = req_str(body, "invoice_id")
        req_str(body, "status")
        req_str(body, "currency")
        parse_decimal(body.get("amount"), "amount")
        contract_id = request.path_params["external_id"]
        record = {**body, "contract_external_id": contract_id}
        # One row per invoice: a later status (or a redelivery) replaces the earlier one.
        self.state.crm.billing_status.setdefault(contract_id, {})[invoice_id] = record
        return JSONResponse(record)

    async def list_billing_status(self, request: Request) -> Response:
        items = self.state.crm.billing_status.get(request.path_params["external_id"], {})
        return JSONResponse({"items": list(items.values())})
