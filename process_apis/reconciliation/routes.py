"""/process/v1/reconciliations and each contract's newest three-way view."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.access import Right
from app.errors import NotFound
from app.http import Operation, endpoint, json_response, parse_body, parse_path, principal_of
from app.types import BusinessDate
from process_apis.reconciliation import store
from process_apis.reconciliation.views import ContractReconciliation, MismatchView, ReconciliationView, contract_view


class ReconciliationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: BusinessDate


class ReconciliationPath(BaseModel):
    reconciliation_id: uuid.UUID


class ContractPath(BaseModel):
    contract_id: uuid.UUID


async def _view(request: Request, reconciliation_id: uuid.UUID) -> ReconciliationView:
    async with request.app.state.services.db.connection() as conn:
        found = await store.reconciliation(conn, reconciliation_id, principal_of(request))
    if found is None:
        raise NotFound(f"reconciliation {reconciliation_id} does not exist", "UNKNOWN_RECONCILIATION")
    run, mismatches, contracts = found
    return ReconciliationView(
        id=run["id"],
        as_of=run["as_of"],
        checked=run["checked"],
        mismatches=[MismatchView(invoice_id=m["invoice_id"], kind=m["kind"], detail=m["detail"]) for m in mismatches],
        contracts=[contract_view(c) for c in contracts],
    )


async def create_reconciliation(request: Request) -> Response:
    cmd = await parse_body(request, ReconciliationIn)
    reconciliation_id = await request.app.state.services.reconciliation.run(cmd.as_of, principal_of(request).name)
    return json_response(await _view(request, reconciliation_id), 201)


async def get_reconciliation(request: Request) -> Response:
    path = parse_path(request, ReconciliationPath)
    return json_response(await _view(request, path.reconciliation_id))


async def get_contract_reconciliation(request: Request) -> Response:
    path = parse_path(request, ContractPath)
    async with request.app.state.services.db.connection() as conn:
        rows = await store.contract_rows(conn, principal_of(request), contract_id=path.contract_id)
    if not rows:
        raise NotFound(f"no reconciliation covers contract {path.contract_id} yet", "UNKNOWN_RECONCILIATION")
    return json_response(contract_view(rows[0]))


_TAGS = ("billing",)
routes: list[Route] = [
    endpoint(
        "/process/v1/reconciliations",
        "POST",
        create_reconciliation,
        Operation(
            "createReconciliation",
            "Compare every posted invoice and credit note with the ERP, and each contract's money across systems",
            Right.RUN_BILLING,
            body=ReconciliationIn,
            response=ReconciliationView,
            status=201,
            tags=_TAGS,
            links={"getReconciliation": {"reconciliation_id": "$response.body#/id"}},
            errors={422: ("VALIDATION_FAILED",), 503: ("BACKEND_UNAVAILABLE",)},
        ),
    ),
    endpoint(
        "/process/v1/reconciliations/{reconciliation_id}",
        "GET",
        get_reconciliation,
        Operation(
            "getReconciliation",
            "A reconciliation: its mismatches and, per contract, CRM value, PSA billed, ERP posted, billed, unbilled",
            Right.READ_BILLING,
            path=ReconciliationPath,
            response=ReconciliationView,
            tags=_TAGS,
            errors={404: ("UNKNOWN_RECONCILIATION",)},
        ),
    ),
    endpoint(
        "/process/v1/contracts/{contract_id}/reconciliation",
        "GET",
        get_contract_reconciliation,
        Operation(
            "getContractReconciliation",
            "The contract's money across CRM, PSA, ERP and psbridge, from the newest reconciliation",
            Right.READ_BILLING,
            path=ContractPath,
            response=ContractReconciliation,
            tags=_TAGS,
            errors={404: ("UNKNOWN_RECONCILIATION",)},
        ),
    ),
]
