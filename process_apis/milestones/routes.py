"""/process/v1/milestones/{contract_id}/{key}/acceptance."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.http import Operation, client_of, endpoint, json_response, parse_body, parse_id
from process_apis.milestones.commands import AcceptanceIn


async def accept_milestone(request: Request) -> Response:
    contract_id = parse_id(request.path_params["contract_id"])
    cmd = await parse_body(request, AcceptanceIn)
    result = await request.app.state.services.milestones.accept_milestone(
        contract_id, request.path_params["key"], cmd, client_of(request).name
    )
    return json_response({"milestone": result.milestone, "status": "accepted", "transaction": result.transaction})


routes: list[Route] = [
    endpoint(
        "/process/v1/milestones/{contract_id}/{key}/acceptance",
        "POST",
        accept_milestone,
        Operation(
            "Accept a milestone: creates its billable transaction",
            ("integration", "project_manager"),
            body=AcceptanceIn,
            tags=("milestones",),
            errors=(404, 409, 422),
        ),
    ),
]
