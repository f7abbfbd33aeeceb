"""Kantata-like PSA: projects with budget and milestone plan, and billed-item feedback."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from sandbox._http import (
    VALIDATION_ERROR,
    ApiError,
    error_handlers,
    parse_date,
    parse_decimal,
    plain_error,
    read_object,
    req_str,
)
from sandbox.middleware import wrap_backend
from sandbox.state import Record, SandboxState

__all__ = ["create_app"]

ITEM_TYPES = frozenset({"time_entry", "expense", "milestone"})
_SERVER_FIELDS = ("id", "external_id", "plan_version")


def create_app(state: SandboxState) -> ASGIApp:
    psa = _Psa(state)
    routes = [
        Route("/projects", psa.create_project, methods=["POST"]),
        Route("/projects", psa.list_projects, methods=["GET"]),
        Route("/projects/{project_id}", psa.get_project, methods=["GET"]),
        Route("/projects/{project_id}", psa.update_plan, methods=["PUT"]),
        Route("/billing-status", psa.record_billing_status, methods=["POST"]),
        Route("/billing-status", psa.list_billing_status, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers=error_handlers(plain_error))
    return wrap_backend(app, "psa", state, plain_error)


class _Psa:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def create_project(self, request: Request) -> Response:
        """Idempotent by external_id: a repeat updates the project and answers 200."""
        body = await read_object(request)
        external_id = req_str(body, "external_id")
        req_str(body, "name")
        fields = _plan_fields(body)
        psa = self.state.psa
        project_id = psa.project_by_external_id.get(external_id)
        if project_id is not None:
            return JSONResponse(self._apply(psa.projects[project_id], fields))
        project_id = f"PRJ-{psa.next_project:05d}"
        psa.next_project += 1
        psa.project_by_external_id[external_id] = project_id
        project = {**fields, "id": project_id, "external_id": external_id, "plan_version": 1}
        psa.projects[project_id] = project
        return JSONResponse(project, status_code=201)

    async def list_projects(self, request: Request) -> Response:
        external_id = request.query_params.get("external_id")
        items = [p for p in self.state.psa.projects.values() if external_id in (None, p["external_id"])]
        return JSONResponse({"items": items})

    async def get_project(self, request: Request) -> Response:
        return JSONResponse(self._project(request))

    async def update_plan(self, request: Request) -> Response:
        """Replaces the fields sent (budget, milestones, end_date, ...) and bumps plan_version."""
        project = self._project(request)
        fields = _plan_fields(await read_object(request))
        if not fields:
            raise ApiError(422, VALIDATION_ERROR, "nothing to update: send budget, milestones or end_date")
        project.update(fields, plan_version=project["plan_version"] + 1)
        return JSONResponse(project)

    async def record_billing_status(self, request: Request) -> Response:
        body = await read_object(request)
        items = body.get("items")
        if not isinstance(items, list):
            raise ApiError(422, VALIDATION_ERROR, "items: required list")
        parsed = [_billing_item(item, index) for index, item in enumerate(items)]
        # Keyed by item, so repeated feedback (at-least-once delivery) overwrites, never duplicates.
        for item in parsed:
            self.state.psa.billing_status[(item["type"], item["external_id"])] = item
        return JSONResponse({"updated": len(parsed)})

    async def list_billing_status(self, request: Request) -> Response:
        item_type = request.query_params.get("type")
        items = [i for i in self.state.psa.billing_status.values() if item_type in (None, i["type"])]
        return JSONResponse({"items": items})

    def _project(self, request: Request) -> Record:
        project = self.state.psa.projects.get(request.path_params["project_id"])
        if project is None:
            raise ApiError(404, "NOT_FOUND", f"project {request.path_params['project_id']} not found")
        return project

    @staticmethod
    def _apply(project: Record, fields: dict[str, Any]) -> Record:
        changed = any(project.get(key) != value for key, value in fields.items())
        project.update(fields)
        if changed:
            project["plan_version"] += 1
        return project


def _plan_fields(body: dict[str, Any]) -> dict[str, Any]:
    """Validates the typed fields when present; other fields are stored as sent."""
    if body.get("budget") is not None:
        parse_decimal(body["budget"], "budget")
    for key in ("start_date", "end_date"):
        if body.get(key) is not None:
            parse_date(body[key], key)
    milestones = body.get("milestones")
    if milestones is not None:
        if not isinstance(milestones, list):
            raise ApiError(422, VALIDATION_ERROR, "milestones: must be a list")
        for index, milestone in enumerate(milestones):
            if not isinstance(milestone, dict):
                raise ApiError(422, VALIDATION_ERROR, f"milestones[{index}]: must be an object")
            req_str(milestone, "key")
            parse_decimal(milestone.get("amount"), f"milestones[{index}].amount")
    return {key: value for key, value in body.items() if key not in _SERVER_FIELDS}


def _billing_item(item: Any, index: int) -> Record:
    if not isinstance(item, dict):
        raise ApiError(422, VALIDATION_ERROR, f"items[{index}]: must be an object")
    if item.get("type") not in ITEM_TYPES:
        raise ApiError(422, VALIDATION_ERROR, f"items[{index}].type: one of {sorted(ITEM_TYPES)}")
    for key in ("external_id", "invoice_id", "status"):
        req_str(item, key)
    return dict(item)
