"""/process/v1/time-entries and /process/v1/expenses: batches, one entry's state, voids."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.access import Right
from app.db import loads
from app.errors import DomainError, FieldError, NotFound, ValidationFailed
from app.http import Operation, control_errors, endpoint, json_response, parse_path, principal_of
from app.types import Code, ExternalId
from process_apis.ledger.records import EntryKind
from process_apis.ledger.store import transaction_lineage
from process_apis.work.commands import MAX_ENTRIES, BatchIn, ControlledEntry, ExpenseBatchIn
from process_apis.work.service import EntryResult, WorkService
from process_apis.work.views import (
    BatchResults,
    EntryView,
    ExpenseBatchResults,
    TransactionLineage,
    entry_view,
    expense_results,
    lineage_view,
    time_results,
)


class TransactionPath(BaseModel):
    transaction_id: uuid.UUID


async def get_transaction(request: Request) -> Response:
    path = parse_path(request, TransactionPath)
    async with request.app.state.services.db.connection() as conn:
        found = await transaction_lineage(conn, path.transaction_id, principal_of(request))
    if found is None:
        raise NotFound(f"transaction {path.transaction_id} does not exist")
    return json_response(lineage_view(found))


class EntryPath(BaseModel):
    source: Code
    external_id: ExternalId


class _Envelope(BaseModel):
    source: Code
    entries: list[Any]


def _too_many(count: int) -> DomainError:
    return DomainError(
        detail=f"a batch holds at most {MAX_ENTRIES} entries; this one has {count}",
        code="PAYLOAD_TOO_LARGE",
        status=413,
        title="Content too large",
    )


async def parse_batch(request: Request) -> tuple[str, list[Any]]:
    """The envelope only: the count limit first (413 before any entry is looked at), then its shape (422)."""
    raw = await request.body()
    try:
        body = loads(raw)
    except ValueError:
        raise ValidationFailed(
            "the body is not valid JSON", errors=[FieldError(["body"], "invalid JSON", "INVALID_JSON")]
        ) from None
    if isinstance(body, dict) and isinstance(body.get("entries"), list) and len(body["entries"]) > MAX_ENTRIES:
        raise _too_many(len(body["entries"]))
    try:
        envelope = _Envelope.model_validate(body)
    except ValidationError as exc:
        errors = [
            FieldError(["body", *e["loc"]], e["msg"], "MISSING_FIELD" if e["type"] == "missing" else "INVALID_VALUE")
            for e in exc.errors(include_url=False)
        ]
        raise ValidationFailed("the batch envelope is invalid", errors=errors) from None
    extra = sorted(set(body) - {"source", "entries"})
    if extra:
        raise ValidationFailed(
            "the batch envelope is invalid",
            errors=[FieldError(["body", k], "Extra inputs are not permitted", "UNKNOWN_FIELD") for k in extra],
        )
    entries = envelope.entries
    if b"\\u00" in raw or b"\x7f" in raw:  # a control character can only hide behind an escape or DEL
        entries = [ControlledEntry(e, found) if (found := control_errors(e, [])) else e for e in entries]
    return envelope.source, entries


async def _ingest(request: Request, kind: EntryKind) -> list[EntryResult]:
    source, entries = await parse_batch(request)
    work: WorkService = request.app.state.services.work
    return await work.ingest(kind, source, entries, principal_of(request))


async def post_time_entries(request: Request) -> Response:
    return json_response(time_results(await _ingest(request, "time")))


async def post_expenses(request: Request) -> Response:
    return json_response(expense_results(await _ingest(request, "expense")))


def _getter(kind: EntryKind) -> Callable[[Request], Awaitable[Response]]:
    async def get_entry(request: Request) -> Response:
        path = parse_path(request, EntryPath)
        detail = await request.app.state.services.work.entry(kind, path.source, path.external_id, principal_of(request))
        return json_response(entry_view(detail))

    return get_entry


def _voider(kind: EntryKind) -> Callable[[Request], Awaitable[Response]]:
    async def void_entry(request: Request) -> Response:
        path = parse_path(request, EntryPath)
        principal = principal_of(request)
        await request.app.state.services.work.void(kind, path.source, path.external_id, principal)
        detail = await request.app.state.services.work.entry(kind, path.source, path.external_id, principal)
        return json_response(entry_view(detail))

    return void_entry


_INGEST_ERRORS = {
    403: ("FORBIDDEN", "FIELD_NOT_OWNED"),
    413: ("PAYLOAD_TOO_LARGE",),
    422: ("VALIDATION_FAILED",),
}


def _routes(
    kind: EntryKind, plural: str, noun: str, nouns: str, body: type[BaseModel], results: type[BaseModel], post: Any
) -> list[Route]:
    base = f"/process/v1/{plural}"
    one = f"{base}/{{source}}/{{external_id}}"
    return [
        endpoint(
            base,
            "POST",
            post,
            Operation(
                f"ingest{nouns}",
                f"Send up to {MAX_ENTRIES} {noun.lower()}s: each judged, priced, capped or held; per-entry results",
                Right.WRITE_WORK,
                body=body,
                response=results,
                tags=("work",),
                errors=_INGEST_ERRORS,
                links={
                    f"get{noun}": {
                        "source": "$request.body#/source",
                        "external_id": "$response.body#/results/0/external_id",
                    },
                    f"void{noun}": {
                        "source": "$request.body#/source",
                        "external_id": "$response.body#/results/0/external_id",
                    },
                },
            ),
        ),
        endpoint(
            one,
            "GET",
            _getter(kind),
            Operation(
                f"get{noun}",
                f"One {noun.lower()}'s state, versions and transactions (why is it unbilled?)",
                Right.READ_WORK,
                path=EntryPath,
                response=EntryView,
                tags=("work",),
                errors={404: ("NOT_FOUND", "UNKNOWN_ENTRY")},
            ),
        ),
        endpoint(
            one,
            "DELETE",
            _voider(kind),
            Operation(
                f"void{noun}",
                f"Void a {noun.lower()} (deleted or unapproved upstream): its value becomes 0; history stays",
                Right.WRITE_WORK,
                path=EntryPath,
                response=EntryView,
                tags=("work",),
                errors={403: ("FORBIDDEN", "FIELD_NOT_OWNED"), 404: ("NOT_FOUND", "UNKNOWN_ENTRY")},
            ),
        ),
    ]


routes: list[Route] = [
    endpoint(
        "/process/v1/transactions/{transaction_id}",
        "GET",
        get_transaction,
        Operation(
            "getTransaction",
            "One billing transaction and its lineage: the entry version or milestone that priced it, the request",
            Right.READ_BILLING,
            path=TransactionPath,
            response=TransactionLineage,
            tags=("work",),
            errors={404: ("NOT_FOUND",)},
        ),
    ),
    *_routes("time", "time-entries", "TimeEntry", "TimeEntries", BatchIn, BatchResults, post_time_entries),
    *_routes("expense", "expenses", "Expense", "Expenses", ExpenseBatchIn, ExpenseBatchResults, post_expenses),
]
