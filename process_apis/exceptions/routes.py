"""/process/v1/exceptions: the work queues of integration, delivery and finance."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.access import Right
from app.http import Operation, endpoint, json_response, parse_body, parse_path, parse_query, principal_of
from process_apis.exceptions import queries
from process_apis.exceptions.views import ExceptionPage, ExceptionView, GroupRetried

_TEXT = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # tabs and newlines are fine in a note


class ExceptionPath(BaseModel):
    exception_id: uuid.UUID


class GroupPath(BaseModel):
    group_key: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


class ExceptionAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=4000, pattern=_TEXT)
    owner: str | None = Field(default=None, max_length=200, pattern=_TEXT)


async def _action_body(request: Request) -> ExceptionAction:
    # The body is optional for actions: an empty POST is a plain "do it".
    if not (await request.body()).strip():
        return ExceptionAction()
    return await parse_body(request, ExceptionAction)


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


async def _transition(request: Request, status: str) -> Response:
    exception_id = parse_path(request, ExceptionPath).exception_id
    body = await _action_body(request)
    await request.app.state.services.exceptions.transition(
        exception_id, status, body.note, body.owner, principal_of(request)
    )
    return await _read(request, exception_id)


async def retry_exception(request: Request) -> Response:
    exception_id = parse_path(request, ExceptionPath).exception_id
    body = await _action_body(request)
    await request.app.state.services.exceptions.retry(exception_id, body.note, principal_of(request))
    return await _read(request, exception_id)


async def retry_group(request: Request) -> Response:
    group_key = parse_path(request, GroupPath).group_key
    result = await request.app.state.services.exceptions.retry_group(group_key, principal_of(request))
    return json_response(GroupRetried(group_key=result.group_key, retried=result.retried, resolved=result.resolved))


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
            links={
                name: {"exception_id": "$response.body#/items/0/id"}
                for name in ("getException", "acknowledgeException", "resolveException", "retryException")
            }
            | {"retryExceptionGroup": {"group_key": "$response.body#/items/0/group_key"}},
            errors={422: ("VALIDATION_FAILED", "INVALID_CURSOR")},
        ),
    ),
    endpoint(
        "/process/v1/exceptions/{exception_id}",
        "GET",
        get_exception,
        _action("getException", "One exception", response=ExceptionView, errors={404: ("NOT_FOUND",)}),
    ),
    endpoint(
        "/process/v1/exceptions/{exception_id}/acknowledge",
        "POST",
        acknowledge_exception,
        _action(
            "acknowledgeException",
            "Acknowledge: someone owns it now (a resolved exception stays resolved: 409)",
            body=ExceptionAction,
            body_optional=True,
            response=ExceptionView,
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
            response=ExceptionView,
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
            response=ExceptionView,
            errors={**_ACTION_ERRORS, 409: ("NOT_RETRYABLE",)},
        ),
    ),
    endpoint(
        "/process/v1/exceptions/groups/{group_key}/retry",
        "POST",
        retry_group,
        _action(
            "retryExceptionGroup",
            "Fix once, replay many: retry every open exception of a group",
            path=GroupPath,
            response=GroupRetried,
            errors={404: ("NOT_FOUND",), 409: ("NOT_RETRYABLE",)},
        ),
    ),
]
