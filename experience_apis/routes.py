"""/graphql (POST: role-scoped queries; GET: the offline GraphiQL page)."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from graphql import GraphQLError, OperationDefinitionNode, parse
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from app.db import loads
from app.errors import DomainError, Forbidden, ValidationFailed
from app.http import client_of, json_response
from experience_apis.context import Context
from experience_apis.graphiql_page import GRAPHIQL_CSP, graphiql_html

OPERATIONS_DIR = Path(__file__).resolve().parent.parent / "graphql" / "operations"


@cache
def portal_operations() -> dict[str, str]:
    """Allow-listed documents customers may run, keyed by ``sha256:<hex of the document text>``."""
    return {
        "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest(): p.read_text()
        for p in sorted((OPERATIONS_DIR / "portal").glob("*.graphql"))
    }


def _error(err: GraphQLError) -> dict[str, Any]:
    original = err.original_error
    if isinstance(original, DomainError):
        return {"message": original.detail, "path": err.path, "extensions": {"code": original.code}}
    if original is not None:
        # Mask anything unexpected: never leak SQL or internals through GraphQL either.
        return {"message": "internal error", "path": err.path, "extensions": {"code": "INTERNAL_ERROR"}}
    return err.formatted


def _operation_names(query: str) -> set[str]:
    try:
        document = parse(query)
    except GraphQLError:
        return set()  # execute() reports the syntax error itself
    return {d.name.value for d in document.definitions if isinstance(d, OperationDefinitionNode) and d.name}


async def graphql_endpoint(request: Request) -> Response:
    try:
        body = loads(await request.body())
    except ValueError:
        raise ValidationFailed("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object with query or documentId")
    client = client_of(request)
    query = body.get("query")
    document_id = body.get("documentId")
    if client.role == "customer":
        allowed = portal_operations()
        if document_id is not None:
            query = allowed.get(str(document_id))
        elif isinstance(query, str):
            query = query if "sha256:" + hashlib.sha256(query.encode()).hexdigest() in allowed else None
        if query is None:
            raise Forbidden("customer keys may run only the persisted portal operations")
    if not isinstance(query, str) or not query.strip():
        raise ValidationFailed("query (or documentId) is required")
    variables = body.get("variables") or {}
    if not isinstance(variables, dict):
        raise ValidationFailed("variables must be an object")
    operation_name = body.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise ValidationFailed("operationName must be a string")
    if operation_name is not None and operation_name not in _operation_names(query):
        raise ValidationFailed(f"the document has no operation named {operation_name!r}")
    services = request.app.state.services
    result = await request.app.state.graphql_schema.execute(
        query,
        variable_values=variables,
        operation_name=operation_name,
        context_value=Context(client=client, db=services.db, max_page_size=services.settings.graphql_max_page_size),
    )
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [_error(e) for e in result.errors]
    return json_response(payload)


async def graphiql(request: Request) -> Response:
    return HTMLResponse(
        graphiql_html("/graphql", "/static/experience"), headers={"Content-Security-Policy": GRAPHIQL_CSP}
    )


routes: list[Route] = [
    Route("/graphql", graphql_endpoint, methods=["POST"]),
    Route("/graphql", graphiql, methods=["GET"]),
]
