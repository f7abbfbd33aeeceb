"""/process/v1/exception-groups and /process/v1/exception-kinds: the queues seen by root cause, and
the queue and SLA each kind of exception gets."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.access import Right
from app.http import Operation, endpoint, json_response, parse_body, parse_path, parse_query, principal_of
from process_apis.exceptions import kinds, queries
from process_apis.exceptions.commands import ExceptionKindIn
from process_apis.exceptions.views import ExceptionGroupPage, ExceptionKind, ExceptionKindPage


class KindPath(BaseModel):
    code: Annotated[
        str, Field(pattern=r"^[A-Z][A-Z0-9_]{0,63}$", description="An exception code, e.g. ERP_POSTING_FAILED")
    ]


async def list_exception_groups(request: Request) -> Response:
    q = parse_query(request, queries.GroupFilter)
    async with request.app.state.services.db.connection() as conn:
        page = await queries.list_exception_groups(conn, principal_of(request), q)
    return json_response(page)


async def list_exception_kinds(request: Request) -> Response:
    async with request.app.state.services.db.connection() as conn:
        items = await kinds.list_exception_kinds(conn)
    return json_response(ExceptionKindPage(items=items, next_cursor=None))


async def put_exception_kind(request: Request) -> Response:
    code = parse_path(request, KindPath).code
    cmd = await parse_body(request, ExceptionKindIn)
    kind = await request.app.state.services.exceptions.put_kind(
        code, cmd.queue, cmd.parsed_sla, cmd.description, principal_of(request)
    )
    return json_response(kind)


routes: list[Route] = [
    endpoint(
        "/process/v1/exception-groups",
        "GET",
        list_exception_groups,
        Operation(
            "listExceptionGroups",
            "Exceptions by root cause: one row per group key (what one fix repairs), ordered by key",
            Right.WORK_EXCEPTIONS,
            query=queries.GroupFilter,
            response=ExceptionGroupPage,
            tags=("exceptions",),
            links={
                "retryExceptionGroup": {"group_key": "$response.body#/items/0/group_key"},
                "listExceptions": {"group_key": "$response.body#/items/0/group_key"},
            },
        ),
    ),
    endpoint(
        "/process/v1/exception-kinds",
        "GET",
        list_exception_kinds,
        Operation(
            "listExceptionKinds",
            "Every exception code psbridge raises, with its queue and SLA (all on one page)",
            Right.WORK_EXCEPTIONS,
            response=ExceptionKindPage,
            tags=("exceptions",),
            links={"putExceptionKind": {"code": "$response.body#/items/0/code"}},
        ),
    ),
    endpoint(
        "/process/v1/exception-kinds/{code}",
        "PUT",
        put_exception_kind,
        Operation(
            "putExceptionKind",
            "Change a kind's queue and SLA: exceptions opened afterwards follow it, open ones keep their due time",
            Right.WRITE_MASTER_DATA,
            path=KindPath,
            body=ExceptionKindIn,
            response=ExceptionKind,
            tags=("exceptions",),
            errors={404: ("NOT_FOUND", "UNKNOWN_EXCEPTION_KIND"), 422: ("VALIDATION_FAILED",)},
        ),
    ),
]
