"""Thin helpers for routes: parse a pydantic body, query or path, answer JSON, declare a route.

``endpoint(...)`` wraps a handler with the access check of its ``Operation`` (the right it
needs, from the one table in ``app.access``) and records what the OpenAPI builder needs
(body, path, query and response models), so the models that validate requests and build
responses are the models that document them.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.access import Principal, Right
from app.db import dumps, loads
from app.errors import FIELD_ERROR, FieldError, Forbidden, NotFound, ValidationFailed

__all__ = [
    "BODY_TEXT_PATTERN",
    "Operation",
    "control_errors",
    "endpoint",
    "json_response",
    "parse_body",
    "parse_path",
    "parse_query",
    "principal_of",
]

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Operation:
    """What a route does, who may call it, and the models that parse and answer it.

    ``id`` is the OpenAPI operationId, a verb in camelCase (``getContract``): generated clients
    name their methods after it. ``right`` is None only for public routes. ``errors`` maps each
    error status the route itself raises to the problem codes it may carry.
    """

    id: str
    summary: str
    right: Right | None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path: type[BaseModel] | None = None
    status: int = 200
    other_statuses: Mapping[int, str] = field(default_factory=dict)  # more successes, same body: status -> why
    tags: Sequence[str] = ()
    errors: Mapping[int, Sequence[str]] = field(default_factory=dict)
    media_type: str = "application/json"
    body_optional: bool = False
    # OpenAPI links from the success response: target operationId -> {parameter: runtime expression}.
    links: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


_CONTROL_MSG = "must not contain control characters"
# C0 controls but tab, newline and carriage return: never wanted in a field, and U+0000 cannot
# even be stored in PostgreSQL text. Ids and filters in the URL take none at all.
_BODY_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
_BODY_CONTROL = re.compile(f"[{_BODY_CONTROLS}]")
# What parse_body allows in any string of a body, as a JSON Schema pattern (app.openapi declares it).
BODY_TEXT_PATTERN = f"^[^{_BODY_CONTROLS}]*$"
_URL_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# Each item of a 422 carries a machine code too (docs/api.md): what kind of problem the field has.
_ITEM_CODES = {"missing": "MISSING_FIELD", "extra_forbidden": "UNKNOWN_FIELD", "json_invalid": "INVALID_JSON"}


def _field_errors(exc: ValidationError, root: str) -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False):
        loc = [root, *err["loc"]]
        if err["type"] == FIELD_ERROR:  # a model validator naming the field it is about (app.errors.field_error)
            loc += list(err.get("ctx", {}).get("field_loc", ()))
        code = _ITEM_CODES.get(err["type"], "INVALID_VALUE")
        out.append(FieldError(loc=loc, msg=err["msg"].removeprefix("Value error, "), code=code))
    return out


def _control_errors(value: Any, loc: list[str | int]) -> list[FieldError]:
    """Refuse control characters up front (422) instead of failing at the insert or the outbound call (500)."""
    if isinstance(value, str):
        return [FieldError(loc, _CONTROL_MSG, "INVALID_VALUE")] if _BODY_CONTROL.search(value) else []
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            bad_key = _BODY_CONTROL.search(key)
            bad = [FieldError([*loc, key], _CONTROL_MSG, "INVALID_VALUE")]
            found += bad if bad_key else _control_errors(item, [*loc, key])
        return found
    if isinstance(value, list):
        return [e for i, item in enumerate(value) for e in _control_errors(item, [*loc, i])]
    return []


def control_errors(value: Any, loc: list[str | int]) -> list[FieldError]:
    """The control characters a parsed JSON value holds, each as an error naming where it is."""
    return _control_errors(value, loc)


async def parse_body(request: Request, model: type[M]) -> M:
    raw = await request.body()
    if not raw.strip():
        raise ValidationFailed(
            "a JSON body is required", errors=[FieldError(["body"], "body is empty", "MISSING_FIELD")]
        )
    try:
        parsed = model.model_validate_json(raw)
    except ValidationError as exc:
        errors = _field_errors(exc, "body")
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise ValidationFailed("the body is not valid JSON", errors=errors) from None
        raise ValidationFailed("the request body is invalid", errors=errors) from None
    if b"\\u00" in raw or b"\x7f" in raw:  # JSON escapes controls as \u00XX: walk only when one may be there
        controls = _control_errors(loads(raw), ["body"])
        if controls:
            raise ValidationFailed("the request body is invalid", errors=controls)
    return parsed


def _check_query(request: Request) -> None:
    bad = [
        FieldError(["query", k], _CONTROL_MSG, "INVALID_VALUE")
        for k, v in request.query_params.multi_items()
        if _URL_CONTROL.search(k + v)
    ]
    if bad:
        raise ValidationFailed("query parameters are invalid", errors=bad)


def parse_query(request: Request, model: type[M]) -> M:
    _check_query(request)
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise ValidationFailed("query parameters are invalid", errors=_field_errors(exc, "query")) from None


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    return Response(dumps(data), status_code=status, media_type="application/json", headers=headers)


def parse_path(request: Request, model: type[M]) -> M:
    """Typed path parameters. A malformed id is an id that does not exist: 404, not 422."""
    try:
        return model.model_validate(request.path_params)
    except ValidationError:
        raise NotFound(f"nothing exists at {request.url.path}") from None


def principal_of(request: Request) -> Principal:
    principal: Principal = request.state.client
    return principal


def endpoint(path: str, method: str, handler: Handler, operation: Operation) -> Route:
    async def guarded(request: Request) -> Response:
        if operation.right is not None:
            principal = principal_of(request)
            if not principal.rest_allowed:
                raise Forbidden("customer keys reach only /graphql, with the portal's persisted operations")
            principal.require(operation.right)
        if any(_URL_CONTROL.search(str(value)) for value in request.path_params.values()):
            raise NotFound(f"nothing exists at {request.url.path}")  # no id, key or code holds a control character
        _check_query(request)
        return await handler(request)

    guarded.__name__ = handler.__name__
    guarded.__doc__ = handler.__doc__
    route = Route(path, guarded, methods=[method])
    route.openapi = operation  # type: ignore[attr-defined]
    return route
