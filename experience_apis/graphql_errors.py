"""What a GraphQL client is told when something goes wrong: codes, masking, and the HTTP status.

A request whose document cannot be parsed, fails validation or a limit, or whose variables
cannot be coerced never executes. It is answered **400** ``application/problem+json`` (RFC 9457:
``type``, ``title``, ``status``, ``detail``, ``code``) whose ``errors`` are GraphQL errors
(``message``, ``locations`` when known, ``extensions.code``) that also carry the house keys
``loc``, ``msg`` and ``code``, and there is no ``data`` (a GraphQL "request error"):

``GRAPHQL_PARSE_FAILED``       the document is not GraphQL (syntax, or nested too deeply to parse)
``GRAPHQL_VALIDATION_FAILED``  it does not validate against the schema, its fragments form a cycle,
                               it names no operation it holds (``operationName``), or it asks for
                               introspection where that is off
``GRAPHQL_LIMIT_EXCEEDED``     depth, aliases, tokens, characters, expanded selections, repeated
                               fields, or values in ``variables`` over the limit
``BAD_USER_INPUT``             a variable (named, with the arguments that use it) cannot be coerced
                               to its type or is missing, or a string holds a control character

Once execution starts the answer is **200** ``{"data", "errors"}``; a field error carries
``path`` and ``extensions.code`` from the one table in ``client_view``: a ``DomainError`` keeps
its ``detail`` and ``code``; a GraphQL error of our own or of graphql-core keeps its message;
anything else is a fault, masked as ``INTERNAL_ERROR`` (strawberry's ``MaskErrors``) and logged
with its stack, never shown. A fault before execution is a 500 problem. A malformed envelope
(not JSON, not an object, ``query`` not a string...) stays a 422 problem like every route's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.types import ExecutionContext

from app.errors import DomainError
from app.observability import get_logger
from app.problems import problem

__all__ = [
    "BAD_USER_INPUT",
    "INTERNAL_ERROR",
    "LIMIT_EXCEEDED",
    "PARSE_FAILED",
    "VALIDATION_FAILED",
    "FaultLoggingSchema",
    "MaskFaults",
    "RequestError",
    "client_view",
    "execution_payload",
    "is_fault",
    "request_error_problem",
    "tag",
]

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
LIMIT_EXCEEDED = "GRAPHQL_LIMIT_EXCEEDED"
BAD_USER_INPUT = "BAD_USER_INPUT"
INTERNAL_ERROR = "INTERNAL_ERROR"
INTERNAL_MESSAGE = "an internal error occurred; quote the correlation id to support"

_DETAILS = {
    PARSE_FAILED: "the GraphQL document could not be parsed",
    VALIDATION_FAILED: "the GraphQL document is not valid for this schema",
    LIMIT_EXCEEDED: "the GraphQL request exceeds a limit",
    BAD_USER_INPUT: "the GraphQL variables or arguments are invalid",
}


class RequestError(GraphQLError):
    """A request refused before execution, with its code and where in the request body it lies."""

    def __init__(self, message: str, code: str, loc: Sequence[str | int] = ("query",), nodes: Any = None) -> None:
        super().__init__(message, nodes, extensions={"code": code})
        self.loc = list(loc)


def tag(error: GraphQLError, code: str) -> None:
    """Give an error graphql-core or strawberry raised its code, unless it already has one."""
    extensions = error.extensions or {}
    if not isinstance(extensions.get("code"), str):
        error.extensions = {**extensions, "code": code}


def is_fault(error: GraphQLError) -> bool:
    """True for what went wrong inside psbridge: neither a domain refusal nor a GraphQL error."""
    original = error.original_error
    return original is not None and not isinstance(original, DomainError | GraphQLError)


def client_view(error: GraphQLError) -> tuple[str, str]:
    """The one table from an error to what the client is told: ``(message, extensions.code)``."""
    if is_fault(error):
        return INTERNAL_MESSAGE, INTERNAL_ERROR
    original = error.original_error
    if isinstance(original, DomainError):
        return original.detail, original.code
    code = (error.extensions or {}).get("code")
    # A GraphQL error raised while executing (an argument graphql-core could not coerce) is the
    # client's doing; request errors are all tagged by the guard before they get here.
    return error.message, code if isinstance(code, str) else BAD_USER_INPUT


def _formatted(error: GraphQLError) -> dict[str, Any]:
    message, code = client_view(error)
    out: dict[str, Any] = {"message": message}
    if error.locations:
        out["locations"] = [location.formatted for location in error.locations]
    if error.path is not None:
        out["path"] = error.path
    extensions = {} if code == INTERNAL_ERROR else dict(error.extensions or {})
    out["extensions"] = {**extensions, "code": code}
    return out


def execution_payload(data: dict[str, Any] | None, errors: Sequence[GraphQLError] | None) -> dict[str, Any]:
    """The 200 body of an executed operation."""
    payload: dict[str, Any] = {"data": data}
    if errors:
        payload["errors"] = [_formatted(e) for e in errors]
    return payload


def request_error_problem(errors: Sequence[GraphQLError]) -> dict[str, Any]:
    """The problem body for a request that never executed: 400, or 500 if psbridge itself failed."""
    if not errors or any(client_view(e)[1] == INTERNAL_ERROR for e in errors):
        return problem(500, INTERNAL_MESSAGE, INTERNAL_ERROR)
    items = []
    for error in errors:
        item = _formatted(error)
        code = item["extensions"]["code"]
        items.append({**item, "loc": list(getattr(error, "loc", ["query"])), "msg": item["message"], "code": code})
    first = items[0]
    body = problem(
        400, f"{_DETAILS.get(first['code'], 'the GraphQL request is invalid')}: {first['message']}", first["code"]
    )
    body["errors"] = items
    return body


class MaskFaults(MaskErrors):
    """strawberry's ``MaskErrors`` for faults only, the masked error keeping ``extensions.code``."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_fault, error_message=INTERNAL_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": INTERNAL_ERROR}
        return masked


class FaultLoggingSchema(strawberry.Schema):
    """Logs each fault with its stack (before ``MaskFaults`` hides it); client errors are not faults."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        log = get_logger(__name__)  # per call: structlog caches a logger on first use, this follows reconfiguration
        for error in errors:
            if is_fault(error):
                log.error("graphql_fault", path=error.path, message=error.message, exc_info=error.original_error)
