"""/process/v1/exceptions: the work queues of integration, delivery and finance (groups and kinds in
``queue_routes``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.access import Right
from app.http import Operation, endpoint, json_response, parse_body, parse_path, parse_query, principal_of
from process_apis.exceptions import queries, queue_routes
from process_apis.exceptions.commands import ExceptionAction, ExceptionAssignment, GroupRetryIn
from process_apis.exceptions.views import ExceptionDetail, ExceptionPage, GroupRetried, SkippedMember

B = TypeVar("B", bound=BaseModel)


class ExceptionPath(BaseModel):
    exception_id: uuid.UUID


class GroupPath(BaseModel):
    group_key: Annotated[str, Field(min_length=1, max_length=queries.GROUP_KEY_MAX, pattern=r"^[^\x00-\x1f\x7f]+$")]


async def _optional_body(request: Request, model: type[B]) -> B:
    # The body is optional for actions: an empty POST is a plain "do it".
    if not (await request.body()).strip():
        return model()
    return await parse_body(request, model)


async def _read(request: Request, exception_id: uuid.UUID) -> Response:
    async with request.app.state.services.db.connection() as conn:
        item = await queries.get_exception(conn, exception_id, principal_of(request))
    return json_response(item)


async def list_exceptions(request: Request) -> Response:
    q = parse_query(request, queries.ExceptionFilter)
    async with request.app.state.services.db.connection() as conn:
        page = await queries.list_exceptions(conn, principal_of(request), q)
    return json_response(page)


async def get_exception(request: Request) -> Response:
    return await _read(request, parse_path(request, ExceptionPath).exception_id)


async def acknowledge_exception(request: Request) -> Response:
    return await _transition(request, "acknowledged")


async def resolve_exception(request: Request) -> Response:
    return await _transition(request, "resolved")


async def _transition(request: Request, status: Literal["acknowledged", "resolved"]) -> Response:
    exception_id = parse_path(request, ExceptionPath).exception_id
    body = await _optional_body(request, ExceptionAction)
    await request.app.state.services.exceptions.transition(
        exception_id, status, body.note, body.owner, principal_of(request)
    )
    return await _read(request, exception_id)


async def assign_exception(request: Request) -> Response:
    exception_id = parse_path(request, ExceptionPath).exception_id
    body = await parse_body(request, ExceptionAssignment)
    await request.app.state.services.exceptions.assign(exception_id, body.owner, body.note, principal_of(request))
    return await _read(request, exception_id)


async def retry_exception(request: Request) -> Response:
    exception_id = parse_path(request, ExceptionPath).exception_id
    body = await _optional_body(request, ExceptionAction)
    await request.app.state.services.exceptions.retry(exception_id, body.note, principal_of(request))
    return await _read(request, exception_id)


async def retry_group(request: Request) -> Response:
    group_key = parse_path(request, GroupPath).group_key
    body = await _optional_body(request, GroupRetryIn)
    result = await request.app.state.services.exceptions.retry_group(group_key, body.note, principal_of(request))
    return json_response(
        GroupRetried(
            group_key=result.group_key,
            retried=result.retried,
            skipped=[SkippedMember(id=s.id, code=s.code, reason=s.reason) for s in result.skipped],
            resolved=result.resolved,
        )
    )


def _action(operation_id: str, summary: str, path: type[BaseModel] = ExceptionPath, **kw: object) -> Operation:
    return Operation(
        operation_id,
        summary,
        Right.WORK_EXCEPTIONS,
        path=path,
        tags=("exceptions",),
        **kw,  # type: ignore[arg-type]
    )


_ACTION_ERRORS = {404: ("NOT_FOUND",), 422: ("VALIDATION_FAILED",)}
_ACTIONS = ("getException", "acknowledgeException", "assignException", "resolveException", "retryException")

routes: list[Route] = [
    endpoint(
        "/process/v1/exceptions",
        "GET",
        list_exceptions,
        Operation(
            "listExceptions",
            "List exceptions (work items)",
            Right.WORK_EXCEPTIONS,
            query=queries.ExceptionFilter,
            response=ExceptionPage,
            tags=("exceptions",),
            links={name: {"exception_id": "$response.body#/items/0/id"} for name in _ACTIONS}
            | {"retryExceptionGroup": {"group_key": "$response.body#/items/0/group_key"}},
            errors={422: ("VALIDATION_FAILED", "INVALID_CURSOR")},
        ),
    ),
    endpoint(
        "/process/v1/exceptions/{exception_id}",
        "GET",
        get_exception,
        _action(
            "getException",
            "One exception, with its history (who moved it, when, from what to what, and why)",
            response=ExceptionDetail,
            errors={404: ("NOT_FOUND",)},
        ),
    ),
    endpoint(
        "/process/v1/exceptions/{exception_id}/acknowledge",
        "POST",
        acknowledge_exception,
        _action(
            "acknowledgeException",
            "Acknowledge: someone owns it now; again with another owner reassigns it (resolved: 409)",
            body=ExceptionAction,
            body_optional=True,
            response=ExceptionDetail,
            errors={**_ACTION_ERRORS, 409: ("EXCEPTION_RESOLVED",)},
        ),
    ),
    endpoint(
        "/process/v1/exceptions/{exception_id}/assign",
        "POST",
        assign_exception,
        _action(
            "assignException",
            "Give it to an owner (null: nobody); the status stays (resolved: 409)",
            body=ExceptionAssignment,
            response=ExceptionDetail,
            errors={**_ACTION_ERRORS, 409: ("EXCEPTION_RESOLVED",)},
        ),
    ),
    endpoint(
        "/process/v1/exceptions/{exception_id}/resolve",
        "POST",
        resolve_exception,
        _action(
            "resolveException",
            "Resolve by hand (again: 200, nothing changes)",
            body=ExceptionAction,
            body_optional=True,
            response=ExceptionDetail,
            errors=_ACTION_ERRORS,
        ),
    ),
    endpoint(
        "/process/v1/exceptions/{exception_id}/retry",
        "POST",
        retry_exception,
        _action(
            "retryException",
            "Replay the failed step (re-quote, re-post, re-check governance, re-propagate)",
            body=ExceptionAction,
            body_optional=True,
            response=ExceptionDetail,
            errors={**_ACTION_ERRORS, 409: ("NOT_RETRYABLE",)},
        ),
    ),
    endpoint(
        "/process/v1/exceptions/groups/{group_key}/retry",
        "POST",
        retry_group,
        _action(
            "retryExceptionGroup",
            "Fix once, replay many: re-drive every open retryable member; one already in flight (or whose "
            "backend is down) is skipped with the reason and the others go on",
            path=GroupPath,
            body=GroupRetryIn,
            body_optional=True,
            response=GroupRetried,
            errors={404: ("NOT_FOUND",), 422: ("VALIDATION_FAILED",)},
        ),
    ),
    *queue_routes.routes,
]
