"""OpenAPI 3.1 built from the same pydantic models that validate requests and build responses.

Each route's ``Operation`` (``app.http``) names its body, path, query and response models; this
module turns them into one document. What every route shares is declared once here: the
problem+json errors of authentication (401/403), rate limiting (429), idempotency (409/422 on
POST), body size and media type (413/415), and the ``X-Correlation-ID`` header on every answer.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute, Route

from app.http import BODY_TEXT_PATTERN, Operation

__all__ = ["build_openapi"]

_REF = "#/components/schemas/{model}"

_PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "The machine code, e.g. PREREQUISITES_NOT_MET"},
        "correlation_id": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "Each failing field or rule; the top-level code is the first one's",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "code": {"type": "string"},
                },
                "required": ["loc", "msg"],
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
}

_CORRELATION_HEADER = {
    "X-Correlation-ID": {
        "description": "The request's correlation id (the one sent, or a new one): quote it to support",
        "required": True,
        "schema": {"type": "string"},
    }
}

_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Same key and body within 24 hours replays the first response (Idempotent-Replayed: true); "
    "another body is 422 IDEMPOTENCY_KEY_REUSED; while the first runs, 409 IDEMPOTENCY_KEY_IN_USE.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
}

# Errors every operation of a kind may answer, whatever the route: status -> problem codes.
_SECURED = {401: ("UNAUTHORIZED",), 403: ("FORBIDDEN",), 429: ("RATE_LIMITED",)}
_POST = {409: ("IDEMPOTENCY_KEY_IN_USE",), 422: ("IDEMPOTENCY_KEY_REUSED", "INVALID_IDEMPOTENCY_KEY")}
_WITH_BODY = {413: ("PAYLOAD_TOO_LARGE",), 415: ("UNSUPPORTED_MEDIA_TYPE",), 422: ("VALIDATION_FAILED",)}


def _problem_response(status: int, codes: tuple[str, ...]) -> dict[str, Any]:
    description = HTTPStatus(status).phrase + (f": {', '.join(codes)}" if codes else "")
    response: dict[str, Any] = {
        "description": description,
        "headers": dict(_CORRELATION_HEADER),
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if status == 429:
        response["headers"] = {
            **_CORRELATION_HEADER,
            "Retry-After": {"description": "Seconds to wait", "required": True, "schema": {"type": "string"}},
        }
    return response


def _operations(routes: list[BaseRoute]) -> list[tuple[str, str, Operation, Route]]:
    found = []
    for route in routes:
        operation = getattr(route, "openapi", None)
        if isinstance(route, Route) and isinstance(operation, Operation):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                found.append((route.path, method.lower(), operation, route))
    return found


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    # An absent query parameter is the "null" of a query string: `?x=` would be an empty string, not null.
    options = schema.get("anyOf")
    if options:
        rest = [o for o in options if o.get("type") != "null"]
        if len(rest) == 1:
            merged = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
            return {**rest[0], **merged}
    return {k: v for k, v in schema.items() if k != "default" or v is not None}


def _parameters(model: type[BaseModel], where: str, components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=_REF)
    components.update(schema.pop("$defs", {}))
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        param: dict[str, Any] = {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "schema": _without_null(prop),
        }
        if "description" in prop:
            param["description"] = prop["description"]
        params.append(param)
    return params


def _errors(op: Operation, method: str) -> dict[int, tuple[str, ...]]:
    merged: dict[int, set[str]] = {}

    def add(table: dict[int, tuple[str, ...]] | Any) -> None:
        for status, codes in table.items():
            merged.setdefault(status, set()).update(codes)

    if op.right is not None:
        add(_SECURED)
        if method == "post":
            add(_POST)
    if op.body is not None:
        add(_WITH_BODY)
    if op.path is not None:
        add({404: ("NOT_FOUND",)})
    if op.query is not None:
        add({422: ("VALIDATION_FAILED",)})
    add(op.errors)
    return {status: tuple(sorted(codes)) for status, codes in sorted(merged.items())}


def _reachable(roots: list[dict[str, Any]], components: dict[str, Any]) -> set[str]:
    """Names of the components a set of schemas refers to, transitively."""
    seen: set[str] = set()
    todo: list[Any] = list(roots)
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.rsplit("/", 1)[-1] not in seen:
                seen.add(ref.rsplit("/", 1)[-1])
                todo.append(components.get(ref.rsplit("/", 1)[-1]))
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
    return seen & set(components)


def _declare_body_text(node: Any) -> None:
    """Request strings refuse C0 control characters (app.http.parse_body): say so where nothing stricter does."""
    if isinstance(node, dict):
        if node.get("type") == "string" and not {"pattern", "format", "enum", "const"} & node.keys():
            node["pattern"] = BODY_TEXT_PATTERN
        for value in node.values():
            _declare_body_text(value)
    elif isinstance(node, list):
        for value in node:
            _declare_body_text(value)


def build_openapi(routes: list[BaseRoute], title: str, version: str, description: str) -> dict[str, Any]:
    operations = _operations(routes)
    inputs = {op.body for _, _, op, _ in operations if op.body is not None}
    outputs = {op.response for _, _, op, _ in operations if op.response is not None}
    keyed, schema = models_json_schema(
        [(m, "validation") for m in sorted(inputs, key=lambda m: m.__name__)]
        + [(m, "serialization") for m in sorted(outputs, key=lambda m: m.__name__)],
        ref_template=_REF,
    )
    components: dict[str, Any] = dict(schema.get("$defs", {}))
    for name in _reachable([keyed[(m, "validation")] for m in inputs], components):
        _declare_body_text(components[name])
    components["Problem"] = _PROBLEM

    paths: dict[str, Any] = {}
    seen_ids: set[str] = set()
    all_ids = {op.id for _, _, op, _ in operations}
    for path, method, op, route in operations:
        if set(op.links) - all_ids:
            raise ValueError(f"{op.id} links to unknown operations {sorted(set(op.links) - all_ids)}")
        if op.id in seen_ids:
            raise ValueError(f"operationId {op.id} is used twice")
        seen_ids.add(op.id)
        ok_schema = keyed[(op.response, "serialization")] if op.response is not None else {"type": "string"}
        ok: dict[str, Any] = {
            "headers": dict(_CORRELATION_HEADER),
            "content": {op.media_type: {"schema": ok_schema}},
        }
        if op.links:
            ok["links"] = {
                target: {"operationId": target, "parameters": dict(parameters)}
                for target, parameters in op.links.items()
            }
        responses: dict[str, Any] = {str(op.status): {"description": HTTPStatus(op.status).phrase, **ok}}
        for status, why in op.other_statuses.items():
            responses[str(status)] = {"description": why, **ok}
        for status, codes in _errors(op, method).items():
            responses[str(status)] = _problem_response(status, codes)
        responses["default"] = {
            "description": "Any other error, as RFC 9457 problem+json",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        item: dict[str, Any] = {
            "operationId": op.id,
            "summary": op.summary,
            "tags": list(op.tags),
            "responses": responses,
        }
        if op.right is not None:
            item["security"] = [{"bearer": []}]
            item["x-right"] = str(op.right)
        params: list[dict[str, Any]] = []
        if op.path is not None:
            params += _parameters(op.path, "path", components)
        else:
            params += [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in route.param_convertors
            ]
        if op.query is not None:
            params += _parameters(op.query, "query", components)
        if method == "post" and op.right is not None:
            params.append(_IDEMPOTENCY_KEY)
        if params:
            item["parameters"] = params
        if op.body is not None:
            item["requestBody"] = {
                "required": not op.body_optional,
                "content": {"application/json": {"schema": keyed[(op.body, "validation")]}},
            }
        paths.setdefault(path, {})[method] = item
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
