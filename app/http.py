"""Thin helpers for routes: parse a pydantic body, read query params, answer JSON, declare a route.

``endpoint(...)`` wraps a handler with its role check and records what the OpenAPI
builder needs (body, response and query models), so the models that validate requests
are the models that document them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.auth import ApiClient, require_role
from app.db import dumps
from app.errors import FieldError, NotFound, ValidationFailed

__all__ = ["Operation", "endpoint", "json_response", "parse_body", "parse_id", "parse_query", "client_of"]

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Operation:
    summary: str
    roles: Sequence[str]
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    status: int = 200
    tags: Sequence[str] = ()
    errors: Sequence[int] = field(default_factory=tuple)
    public: bool = False


def _field_errors(exc: ValidationError, root: str) -> list[FieldError]:
    return [
        FieldError(loc=[root, *err["loc"]], msg=err["msg"].removeprefix("Value error, "))
        for err in exc.errors(include_url=False)
    ]


async def parse_body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    if not raw.strip():
        raise ValidationFailed("a JSON body is required", errors=[FieldError(["body"], "body is empty")])
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = _field_errors(exc, "body")
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise ValidationFailed("the body is not valid JSON", errors=errors) from None
        raise ValidationFailed("the request body is invalid", errors=errors) from None


def parse_query(request: Request, model: type[M]) -> M:
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise ValidationFailed("query parameters are invalid", errors=_field_errors(exc, "query")) from None


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    return Response(dumps(data), status_code=status, media_type="application/json", headers=headers)


def parse_id(raw: str, what: str = "contract") -> uuid.UUID:
    """A path id; a malformed one is simply an id that does not exist (404, not 422)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"{what} {raw} does not exist") from None


def client_of(request: Request) -> ApiClient:
    client: ApiClient = request.state.client
    return client


def endpoint(path: str, method: str, handler: Handler, operation: Operation) -> Route:
    async def guarded(request: Request) -> Response:
        if not operation.public:
            require_role(client_of(request), operation.roles)
        return await handler(request)

    guarded.__name__ = handler.__name__
    guarded.__doc__ = handler.__doc__
    route = Route(path, guarded, methods=[method])
    route.openapi = operation  # type: ignore[attr-defined]
    return route
