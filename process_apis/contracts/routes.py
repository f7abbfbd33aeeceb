"""/process/v1/contracts: CRM webhooks register contracts; anyone entitled reads them."""

from __future__ import annotations

import uuid

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.access import Right
from app.canonical.contract import ContractIn
from app.http import Operation, endpoint, json_response, parse_body, parse_path, parse_query, principal_of
from app.responses import ExceptionRef
from process_apis.contracts import queries
from process_apis.contracts.views import ContractDetail, ContractPage, ContractRegistered


class ContractPath(BaseModel):
    contract_id: uuid.UUID


async def register_contract(request: Request) -> Response:
    cmd = await parse_body(request, ContractIn)
    result = await request.app.state.services.contracts.register_contract(cmd, principal_of(request).name)
    body = ContractRegistered(
        id=result.id,
        status=result.status,
        version=result.version,
        project_id=result.project_id,
        exceptions=[ExceptionRef(id=e.id, code=e.code, detail=e.detail) for e in result.exceptions],
    )
    return json_response(body, 201 if result.created else 200, {"Location": f"/process/v1/contracts/{result.id}"})


async def get_contract(request: Request) -> Response:
    path = parse_path(request, ContractPath)
    async with request.app.state.services.db.connection() as conn:
        contract = await queries.get_contract(conn, path.contract_id, principal_of(request))
    return json_response(contract)


async def list_contracts(request: Request) -> Response:
    q = parse_query(request, queries.ContractFilter)
    async with request.app.state.services.db.connection() as conn:
        page = await queries.list_contracts(conn, principal_of(request), q)
    return json_response(page)


routes: list[Route] = [
    endpoint(
        "/process/v1/contracts",
        "POST",
        register_contract,
        Operation(
            "registerContract",
            "Register an executable contract from CRM",
            Right.WRITE_CONTRACTS,
            body=ContractIn,
            response=ContractRegistered,
            status=201,
            other_statuses={200: "The same contract again (a resend): nothing changed"},
            tags=("contracts",),
            links={
                "getContract": {"contract_id": "$response.body#/id"},
                "acceptMilestone": {"contract_id": "$response.body#/id", "key": "$request.body#/milestones/0/key"},
                "getException": {"exception_id": "$response.body#/exceptions/0/id"},
            },
            errors={409: ("AMENDMENT_REQUIRED",), 422: ("VALIDATION_FAILED",), 503: ("BACKEND_UNAVAILABLE",)},
        ),
    ),
    endpoint(
        "/process/v1/contracts",
        "GET",
        list_contracts,
        Operation(
            "listContracts",
            "List contracts",
            Right.READ_CONTRACTS,
            query=queries.ContractFilter,
            response=ContractPage,
            tags=("contracts",),
            links={"getContract": {"contract_id": "$response.body#/items/0/id"}},
            errors={422: ("VALIDATION_FAILED", "INVALID_CURSOR")},
        ),
    ),
    endpoint(
        "/process/v1/contracts/{contract_id}",
        "GET",
        get_contract,
        Operation(
            "getContract",
            "A contract with its versions, propagation and milestones",
            Right.READ_CONTRACTS,
            path=ContractPath,
            response=ContractDetail,
            tags=("contracts",),
            errors={404: ("NOT_FOUND",)},
        ),
    ),
]
