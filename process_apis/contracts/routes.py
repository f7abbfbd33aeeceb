"""/process/v1/contracts: CRM webhooks register contracts; anyone entitled reads them."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.errors import NotFound
from app.http import Operation, client_of, endpoint, json_response, parse_body, parse_id, parse_query
from process_apis.contracts import queries
from process_apis.contracts.commands import ContractIn, ContractQuery

READERS = ("integration", "finance", "project_manager", "customer", "bi")


class ContractRegistered(BaseModel):
    id: str
    status: str
    version: int
    project_id: str | None
    exceptions: list[dict[str, str]]


async def register_contract(request: Request) -> Response:
    cmd = await parse_body(request, ContractIn)
    result = await request.app.state.services.contracts.register_contract(cmd, client_of(request).name)
    body = ContractRegistered(
        id=str(result.id),
        status=result.status,
        version=result.version,
        project_id=result.project_id,
        exceptions=result.exceptions,
    )
    return json_response(body, 201 if result.created else 200, {"Location": f"/process/v1/contracts/{result.id}"})


async def get_contract(request: Request) -> Response:
    contract_id = parse_id(request.path_params["contract_id"])
    client = client_of(request)
    async with request.app.state.services.db.connection() as conn:
        contract = await queries.get_contract(conn, contract_id)
    if client.role == "customer" and contract["customer"]["external_id"] != client.customer_external_id:
        raise NotFound(f"contract {contract_id} does not exist")  # never confirm others' contracts exist
    return json_response(contract)


async def list_contracts(request: Request) -> Response:
    q = parse_query(request, ContractQuery)
    client = client_of(request)
    scope = client.customer_external_id if client.role == "customer" else None
    async with request.app.state.services.db.connection() as conn:
        page = await queries.list_contracts(conn, q.customer, q.status, q.limit, q.after, scope)
    return json_response(page)


routes: list[Route] = [
    endpoint(
        "/process/v1/contracts",
        "POST",
        register_contract,
        Operation(
            "Register an executable contract from CRM",
            ("integration",),
            body=ContractIn,
            response=ContractRegistered,
            status=201,
            tags=("contracts",),
            errors=(409, 422),
        ),
    ),
    endpoint(
        "/process/v1/contracts",
        "GET",
        list_contracts,
        Operation("List contracts", READERS, query=ContractQuery, tags=("contracts",)),
    ),
    endpoint(
        "/process/v1/contracts/{contract_id}",
        "GET",
        get_contract,
        Operation(
            "A contract with its versions, propagation and milestones", READERS, tags=("contracts",), errors=(404,)
        ),
    ),
]
