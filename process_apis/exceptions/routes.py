"""/process/v1/exceptions: the work queues of integration, delivery and finance."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.http import Operation, client_of, endpoint, json_response, parse_body, parse_id, parse_query
from process_apis.exceptions import queries

STAFF = ("integration", "finance", "project_manager")


class ExceptionQuery(BaseModel):
    status: Literal["open", "acknowledged", "resolved"] | None = None
    queue: Literal["integration", "delivery", "finance"] | None = None
    code: str | None = None
    subject_id: str | None = None
    group_key: str | None = None
    limit: int = Field(default=50, ge=1, le=500)
    after: str | None = None


async def list_exceptions(request: Request) -> Response:
    q = parse_query(request, ExceptionQuery)
    filters = q.model_dump(exclude={"limit", "after"})
    async with request.app.state.services.db.connection() as conn:
        page = await queries.list_exceptions(conn, filters, q.limit, q.after)
    return json_response(page)


async def get_exception(request: Request) -> Response:
    exception_id = parse_id(request.path_params["exception_id"], "exception")
    async with request.app.state.services.db.connection() as conn:
        item = await queries.get_exception(conn, exception_id)
    return json_response(item)


class ExceptionAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=4000)
    owner: str | None = Field(default=None, max_length=200)


async def _action_body(request: Request) -> ExceptionAction:
    # The body is optional for actions: an empty POST is a plain "do it".
    if not (await request.body()).strip():
        return ExceptionAction()
    return await parse_body(request, ExceptionAction)


async def acknowledge_exception(request: Request) -> Response:
    return await _transition(request, "acknowledged")


async def resolve_exception(request: Request) -> Response:
    return await _transition(request, "resolved")


async def _transition(request: Request, status: str) -> Response:
    exception_id = parse_id(request.path_params["exception_id"], "exception")
    body = await _action_body(request)
    item = await request.app.state.services.exceptions.transition(
        exception_id, status, body.note, body.owner, client_of(request).name
    )
    return json_response(item)


async def retry_exception(request: Request) -> Response:
    exception_id = parse_id(request.path_params["exception_id"], "exception")
    body = await _action_body(request)
    item = await request.app.state.services.exceptions.retry(exception_id, body.note, client_of(request).name)
    return json_response(item)


async def retry_group(request: Request) -> Response:
    result = await request.app.state.services.exceptions.retry_group(
        request.path_params["group_key"], client_of(request).name
    )
    return json_response(result)


routes: list[Route] = [
    endpoint(
        "/process/v1/exceptions",
        "GET",
        list_exceptions,
        Operation("List exceptions (work items)", STAFF, query=ExceptionQuery, tags=("exceptions",)),
    ),
    endpoint(
        "/process/v1/exceptions/{exception_id}",
        "GET",
        get_exception,
        Operation("One exception", STAFF, tags=("exceptions",), errors=(404,)),
    ),
    endpoint(
        "/process/v1/exceptions/{exception_id}/acknowledge",
        "POST",
        acknowledge_exception,
        Operation("Acknowledge: someone owns it now", STAFF, body=ExceptionAction, tags=("exceptions",)),
    ),
    endpoint(
        "/process/v1/exceptions/{exception_id}/resolve",
        "POST",
        resolve_exception,
        Operation("Resolve by hand", STAFF, body=ExceptionAction, tags=("exceptions",)),
    ),
    endpoint(
        "/process/v1/exceptions/{exception_id}/retry",
        "POST",
        retry_exception,
        Operation(
            "Replay the failed step (re-quote, re-post, re-check governance, re-propagate)",
            STAFF,
            body=ExceptionAction,
            tags=("exceptions",),
        ),
    ),
    endpoint(
        "/process/v1/exceptions/groups/{group_key}/retry",
        "POST",
        retry_group,
        Operation("Fix once, replay many: retry every open exception of a group", STAFF, tags=("exceptions",)),
    ),
]
