"""/process/v1/legal-entities."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.access import Right
from app.errors import FieldError, ValidationFailed
from app.http import Operation, endpoint, json_response, parse_body, principal_of
from app.outbox import record_audit
from app.responses import ApiModel, Page
from process_apis.master_data import store
from process_apis.master_data.commands import LegalEntityIn

_CODE = r"^[A-Z0-9_]{2,20}$"


class LegalEntityPath(BaseModel):
    code: Annotated[str, Field(pattern=_CODE, description="2-20 of A-Z, 0-9, _ (e.g. US01)")]


class LegalEntity(ApiModel):
    code: str
    name: str
    country: str
    functional_currency: str
    allowed_currencies: list[str]


class LegalEntityPage(Page[LegalEntity]):
    pass


async def put_legal_entity(request: Request) -> Response:
    code = request.path_params["code"]
    if not re.match(_CODE, code):  # a bad code in a PUT is bad input (422), not a missing thing
        raise ValidationFailed(
            "legal entity codes are 2-20 of A-Z, 0-9, _",
            code="INVALID_CODE",
            errors=[FieldError(["path", "code"], "must be 2-20 of A-Z, 0-9, _")],
        )
    cmd = await parse_body(request, LegalEntityIn)
    async with request.app.state.services.db.transaction() as conn:
        created = await store.upsert_legal_entity(conn, code, cmd)
        await record_audit(conn, principal_of(request).name, "legal_entity.put", "legal_entity", code)
    return json_response(LegalEntity(code=code, **cmd.model_dump(mode="json")), 201 if created else 200)


async def list_legal_entities(request: Request) -> Response:
    async with request.app.state.services.db.connection() as conn:
        items = await store.list_legal_entities(conn)
    return json_response(LegalEntityPage(items=[LegalEntity(**i) for i in items], next_cursor=None))


routes: list[Route] = [
    endpoint(
        "/process/v1/legal-entities/{code}",
        "PUT",
        put_legal_entity,
        Operation(
            "putLegalEntity",
            "Create or update a legal entity",
            Right.WRITE_MASTER_DATA,
            path=LegalEntityPath,
            body=LegalEntityIn,
            response=LegalEntity,
            status=201,
            other_statuses={200: "Updated"},
            tags=("master data",),
            errors={422: ("VALIDATION_FAILED", "INVALID_CODE")},
        ),
    ),
    endpoint(
        "/process/v1/legal-entities",
        "GET",
        list_legal_entities,
        Operation(
            "listLegalEntities",
            "List legal entities (all on one page)",
            Right.READ_MASTER_DATA,
            response=LegalEntityPage,
            tags=("master data",),
        ),
    ),
]
