"""/process/v1/contracts: CRM webhooks register contracts; anyone entitled reads them."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, RootModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.access import Right
from app.canonical.contract import AmendmentIn, ContractIn
from app.http import Operation, endpoint, json_response, parse_body, parse_path, parse_query, principal_of
from process_apis.contracts import queries
from process_apis.contracts.amendment_rules import CODE_ORDER
from process_apis.contracts.views import (
    AmendmentApplied,
    AmendmentPreview,
    ContractDetail,
    ContractPage,
    ContractRegistered,
    amendment_applied,
    amendment_preview,
    contract_registered,
)


class ContractPath(BaseModel):
    contract_id: uuid.UUID


class AmendmentQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(default=False, description="Preview the impact; nothing is written (an Idempotency-Key is)")


class AmendmentAnswer(RootModel[AmendmentApplied | AmendmentPreview]):
    """The amendment applied (201, or 200 on a resend), or its preview (200 with ``dry_run=true``)."""


async def register_contract(request: Request) -> Response:
    cmd = await parse_body(request, ContractIn)
    result = await request.app.state.services.contracts.register_contract(cmd, principal_of(request))
    location = {"Location": f"/process/v1/contracts/{result.id}"}
    return json_response(contract_registered(result), 201 if result.created else 200, location)


async def amend_contract(request: Request) -> Response:
    contract_id = parse_path(request, ContractPath).contract_id
    query = parse_query(request, AmendmentQuery)
    cmd = await parse_body(request, AmendmentIn)
    contracts = request.app.state.services.contracts
    if query.dry_run:
        impact = await contracts.preview_amendment(contract_id, cmd, principal_of(request))
        return json_response(amendment_preview(impact))
    outcome = await contracts.amend_contract(contract_id, cmd, principal_of(request))
    return json_response(amendment_applied(outcome), 201 if outcome.created else 200)


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
                "amendContract": {"contract_id": "$response.body#/id"},
                "acceptMilestone": {"contract_id": "$response.body#/id", "key": "$request.body#/milestones/0/key"},
                "getException": {"exception_id": "$response.body#/exceptions/0/id"},
            },
            errors={
                403: ("FIELD_NOT_OWNED",),
                409: ("AMENDMENT_REQUIRED",),
                422: ("VALIDATION_FAILED",),
                503: ("BACKEND_UNAVAILABLE",),
            },
        ),
    ),
    endpoint(
        "/process/v1/contracts/{contract_id}/amendments",
        "POST",
        amend_contract,
        Operation(
            "amendContract",
            "Amend a contract (version n+1), or preview the amendment's impact with dry_run=true",
            Right.WRITE_CONTRACTS,
            path=ContractPath,
            query=AmendmentQuery,
            body=AmendmentIn,
            response=AmendmentAnswer,
            status=201,
            other_statuses={200: "The same body again for a version already applied (a resend), or a dry run"},
            tags=("contracts",),
            links={"getContract": {"contract_id": "$request.path.contract_id"}},
            errors={
                403: ("FIELD_NOT_OWNED",),
                404: ("NOT_FOUND",),
                409: ("VERSION_CONFLICT", "CONTRACT_BLOCKED"),
                422: ("VALIDATION_FAILED", *CODE_ORDER),
            },
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
