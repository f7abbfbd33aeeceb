"""/graphql (POST: role-scoped queries; GET: the offline GraphiQL page).

Statuses (codes and bodies in ``experience_apis.graphql_errors``): a malformed envelope (not JSON,
not an object, a member of the wrong type) is a 422 problem; a request that never executes
(parse, validation, limits, variables) a 400 problem whose ``errors`` are GraphQL errors; an
executed operation a 200 ``{"data", "errors"}``, field errors included.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from graphql import introspection_from_schema
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.types.execution import PreExecutionError

from app.access import Principal
from app.db import loads
from app.errors import FieldError, Forbidden, NotFound, ValidationFailed
from app.http import json_response, principal_of
from app.problems import problem_response
from experience_apis.context import Context
from experience_apis.graphiql_page import GRAPHIQL_CSP, graphiql_html
from experience_apis.graphql_errors import (
    VALIDATION_FAILED,
    RequestError,
    execution_payload,
    request_error_problem,
)

OPERATIONS_DIR = Path(__file__).resolve().parent.parent / "graphql" / "operations"
# The members of a GraphQL-over-HTTP request and the JSON type each must have when present.
_MEMBERS: dict[str, tuple[type, str]] = {
    "query": (str, "a string"),
    "documentId": (str, "a string"),
    "operationName": (str, "a string"),
    "variables": (dict, "an object"),
    "extensions": (dict, "an object"),
}


def _documents(pattern: str) -> dict[str, str]:
    return {
        "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest(): p.read_text()
        for p in sorted(OPERATIONS_DIR.glob(pattern))
    }


@cache
def portal_operations() -> dict[str, str]:
    """Allow-listed documents customers may run, keyed by ``sha256:<hex of the document text>``."""
    return _documents("portal/*.graphql")


@cache
def persisted_operations() -> dict[str, str]:
    """Every persisted operation of every role (graphql/operations/<role>/), by the same key."""
    return _documents("*/*.graphql")


def _document(principal: Principal, query: object, document_id: object) -> str:
    """The document to run: persisted ones by documentId (customers: only those, and only the portal's)."""
    customer = principal.role == "customer"
    allowed = portal_operations() if customer else persisted_operations()
    if document_id is not None:
        query = allowed.get(str(document_id))
        if query is None and not customer:
            raise ValidationFailed(
                f"no persisted operation has documentId {str(document_id)[:80]!r}",
                code="UNKNOWN_DOCUMENT",
                errors=[FieldError(["body", "documentId"], "is not a persisted operation")],
            )
    elif customer and isinstance(query, str):
        query = query if "sha256:" + hashlib.sha256(query.encode()).hexdigest() in allowed else None
    if customer and query is None:
        raise Forbidden("customer keys may run only the persisted portal operations")
    if not isinstance(query, str) or not query.strip():
        raise ValidationFailed("query (or documentId) is required")
    return query


def _envelope(raw: bytes) -> dict[str, Any]:
    try:
        body = loads(raw)
    except ValueError:
        raise ValidationFailed("the body is not valid JSON (or nests deeper than 1024 levels)") from None
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object with query or documentId")
    wrong = [
        FieldError(["body", name], f"must be {kind}")
        for name, (kind_type, kind) in _MEMBERS.items()
        if body.get(name) is not None and not isinstance(body[name], kind_type)
    ]
    if wrong:
        raise ValidationFailed(f"{wrong[0].loc[-1]} {wrong[0].msg}", errors=wrong)
    return body


def _no_operation(name: str | None) -> RequestError:
    if name is None:
        return RequestError("the document holds no operation to run", VALIDATION_FAILED)
    return RequestError(f"the document has no operation named {name!r}", VALIDATION_FAILED, ["operationName"])


async def graphql_endpoint(request: Request) -> Response:
    body = _envelope(await request.body())
    client = principal_of(request)
    query = _document(client, body.get("query"), body.get("documentId"))
    variables = body.get("variables") or {}
    operation_name = body.get("operationName")
    services = request.app.state.services
    try:
        result = await request.app.state.graphql_schema.execute(
            query,
            variable_values=variables,
            operation_name=operation_name,
            context_value=Context(
                principal=client, db=services.db, max_page_size=services.settings.graphql_max_page_size
            ),
        )
    except CannotGetOperationTypeError:
        # strawberry raises, rather than answers, when no operation of the document matches
        return problem_response(request_error_problem([_no_operation(operation_name)]))
    if isinstance(result, PreExecutionError):
        return problem_response(request_error_problem(result.errors or []))
    return json_response(execution_payload(result.data, result.errors))


async def graphql_introspection(request: Request) -> Response:
    """The schema as an introspection result, for GraphiQL; absent where introspection is off (production)."""
    if request.app.state.services.settings.env == "production":
        raise NotFound("introspection is off in production; the SDL of record is graphql/schema.graphql")
    return json_response({"data": introspection_from_schema(request.app.state.graphql_schema._schema)})


async def graphiql(request: Request) -> Response:
    return HTMLResponse(
        graphiql_html("/graphql", "/static/experience"), headers={"Content-Security-Policy": GRAPHIQL_CSP}
    )


routes: list[Route] = [
    Route("/graphql", graphql_endpoint, methods=["POST"]),
    Route("/graphql", graphiql, methods=["GET"]),
    Route("/graphql/schema.json", graphql_introspection, methods=["GET"]),
]
