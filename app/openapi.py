"""OpenAPI 3.1 built from the same pydantic models that validate requests (see ``app.http.endpoint``)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute, Route

from app.http import Operation

__all__ = ["build_openapi"]

_PROBLEM = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                },
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
}


_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Same key and body within 24 hours replays the first response (Idempotent-Replayed: true); "
    "another body is 422 IDEMPOTENCY_KEY_REUSED; while the first runs, 409 IDEMPOTENCY_KEY_IN_USE.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _operations(routes: list[BaseRoute]) -> list[tuple[str, str, Operation, Route]]:
    found = []
    for route in routes:
        operation = getattr(route, "openapi", None)
        if isinstance(route, Route) and isinstance(operation, Operation):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                found.append((route.path, method.lower(), operation, route))
    return found


def build_openapi(routes: list[BaseRoute], title: str, version: str, description: str) -> dict[str, Any]:
    operations = _operations(routes)
    models: set[type[BaseModel]] = set()
    for _, _, op, _ in operations:
        models.update(m for m in (op.body, op.response) if m is not None)
    keyed, schema = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    components: dict[str, Any] = dict(schema.get("$defs", {}))
    components["Problem"] = _PROBLEM
    refs = {model: keyed[(model, "validation")] for model in models}

    paths: dict[str, Any] = {}
    used_ids: set[str] = set()
    for path, method, op, route in operations:
        operation_id = f"{method}_{route.name}"
        while operation_id in used_ids:  # two handlers of one name in different modules
            operation_id += "_"
        used_ids.add(operation_id)
        item: dict[str, Any] = {
            "summary": op.summary,
            "operationId": operation_id,
            "tags": list(op.tags),
            "responses": {
                str(op.status): {
                    "description": "OK",
                    "content": {"application/json": {"schema": refs[op.response] if op.response else {}}},
                },
                # The statuses a route names explicitly, then any other error.
                **{str(code): _problem_response(HTTPStatus(code).phrase) for code in op.errors},
                "default": _problem_response("An error (RFC 9457)"),
            },
        }
        if not op.public:
            item["security"] = [{"bearer": []}]
            item["x-roles"] = sorted({"admin", *op.roles})
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in route.param_convertors
        ]
        if op.query is not None:
            query_schema = op.query.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(query_schema.pop("$defs", {}))
            required = set(query_schema.get("required", []))
            params += [
                {"name": name, "in": "query", "required": name in required, "schema": prop}
                for name, prop in query_schema.get("properties", {}).items()
            ]
        if method == "post" and not op.public:
            params.append(_IDEMPOTENCY_KEY)
        if params:
            item["parameters"] = params
        if op.body is not None:
            item["requestBody"] = {"required": True, "content": {"application/json": {"schema": refs[op.body]}}}
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
