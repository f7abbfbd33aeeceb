"""/process/v1/exceptions: the work queues of integration, delivery and finance."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.http import Operation, endpoint, json_response, parse_id, parse_query
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
]
