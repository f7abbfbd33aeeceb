"""/process/v1/legal-entities."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.errors import ValidationFailed
from app.http import Operation, client_of, endpoint, json_response, parse_body
from app.outbox import record_audit
from process_apis.master_data import store
from process_apis.master_data.commands import LegalEntityIn

_CODE = re.compile(r"^[A-Z0-9_]{2,20}$")


async def put_legal_entity(request: Request) -> Response:
    code = request.path_params["code"]
    if not _CODE.match(code):
        raise ValidationFailed("legal entity codes are 2-20 of A-Z, 0-9, _", code="INVALID_CODE")
    cmd = await parse_body(request, LegalEntityIn)
    async with request.app.state.services.db.transaction() as conn:
        created = await store.upsert_legal_entity(conn, code, cmd)
        await record_audit(conn, client_of(request).name, "legal_entity.put", "legal_entity", code)
    return json_response({"code": code, **cmd.model_dump(mode="json")}, 201 if created else 200)


async def list_legal_entities(request: Request) -> Response:
    async with request.app.state.services.db.connection() as conn:
        items = await store.list_legal_entities(conn)
    return json_response({"items": items, "next_cursor": None})


routes: list[Route] = [
    endpoint(
        "/process/v1/legal-entities/{code}",
        "PUT",
        put_legal_entity,
        Operation("Create or update a legal entity", (), body=LegalEntityIn, tags=("master data",)),
    ),
    endpoint(
        "/process/v1/legal-entities",
        "GET",
        list_legal_entities,
        Operation("List legal entities", ("integration", "finance", "project_manager", "bi"), tags=("master data",)),
    ),
]
