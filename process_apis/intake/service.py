"""Inbound CRM events: keep every payload, hand mapped contracts to the contracts process,
turn unmappable ones into MAPPING_FAILED exceptions, and replay them on ``retry``.

Implements ``app.canonical.intake.ContractIntake`` (wired in ``app/bootstrap.py``). Every payload
is an ``inbound_event`` row, byte for byte: ``mapped`` (taken, or not taken for a backend outage:
its ``errors`` say so), ``rejected`` (mapped, then refused by the contract rules: the caller got
that 409/422), ``failed`` (not mappable: a MAPPING_FAILED exception holds it). A key of another
system (``FIELD_NOT_OWNED``) is refused before anything is stored.

Replay (``retry`` of a MAPPING_FAILED exception) maps the kept bytes again with the mapping as it
is now, so fixing the mapping file, or a value map the payload needed, and retrying is enough:
- it maps and the contracts process takes it: the event becomes ``mapped``, its exception is
  resolved, and so are those of earlier failed payloads of the same vendor record (superseded);
- it still does not map: the event's errors are updated and the exception's count goes up;
- it maps but the contract rules refuse it (say a 409 VERSION_CONFLICT because an earlier version
  has not arrived yet): the event is ``rejected`` and the exception stays open with that reason,
  to be retried again later.
In the last two cases the retry itself succeeds (the exception shows why it is still open), so
one payload never stops a group retry; a backend outage (5xx) is raised to the operator.
A payload taken later supersedes the open failures of earlier payloads of the same record (but for
those of a later version: a version 2 that came before version 1 still waits for its retry).
"""

from __future__ import annotations

import uuid
from typing import Any

from app.access import Principal, Right
from app.canonical.intake import (
    AmendmentApplied,
    ContractRegistered,
    ContractState,
    InboundPayload,
    IntakeResult,
    MappingFailure,
)
from app.db import Connection, Database
from app.errors import DomainError, FieldError, NotFound
from app.outbox import record_audit
from app.ownership import check_ownership
from process_apis.contracts.service import ContractService
from process_apis.exceptions.store import raise_exception, resolve_exceptions
from process_apis.intake import store
from process_apis.intake.metrics import MAPPING_FAILURES_TOTAL
from system_apis.crm.port import CrmEvents

__all__ = ["MAPPING_FAILED", "OWNED_FIELDS", "IntakeService"]

MAPPING_FAILED = "MAPPING_FAILED"
# What a contract event writes, in field-ownership words: its terms and its customer's name.
OWNED_FIELDS = [("contract", "terms"), ("customer", "name")]


class IntakeService:
    def __init__(self, db: Database, contracts: ContractService, events: CrmEvents) -> None:
        self.db, self.contracts, self.events = db, contracts, events
        for vendor in events.vendors():
            MAPPING_FAILURES_TOTAL.labels(vendor)  # exported at 0 from the start, so rate() sees the first one

    async def receive_contract(
        self, payload: InboundPayload, state: ContractState, principal: Principal
    ) -> IntakeResult:
        async with self.db.transaction() as conn:
            await check_ownership(conn, principal, OWNED_FIELDS)
            contract_id = await store.find_contract_id(conn, state.contract.source, state.contract.external_id)
            await store.insert_event(conn, payload, "mapped", [], contract_id, state.version, principal.name)
        return await self._take(payload.id, state, principal)

    async def reject_payload(self, payload: InboundPayload, failure: MappingFailure, principal: Principal) -> uuid.UUID:
        async with self.db.transaction() as conn:
            await check_ownership(conn, principal, OWNED_FIELDS)
            await store.insert_event(conn, payload, "failed", _dicts(failure.errors), None, None, principal.name)
            raised = await _raise(conn, payload.id, payload.vendor, _summary(failure), principal.name)
            await record_audit(
                conn,
                principal.name,
                "inbound_event.failed",
                "inbound_event",
                str(payload.id),
                {"vendor": payload.vendor},
            )
        MAPPING_FAILURES_TOTAL.labels(payload.vendor).inc()  # after the commit: counts what was kept
        return raised

    async def replay(self, event_id: uuid.UUID, principal: Principal) -> None:
        """Map a kept payload again (``retry`` of its MAPPING_FAILED exception) and take it if it maps now."""
        principal.require(Right.WRITE_CONTRACTS)  # taking it registers or amends a contract, as sending it would
        async with self.db.connection() as conn:
            await check_ownership(conn, principal, OWNED_FIELDS)
            event = await store.find_event(conn, event_id)
        if event is None:
            raise NotFound(f"inbound event {event_id} does not exist")
        mapped = self.events.read_contract_event(event.vendor, event.body)
        if isinstance(mapped.result, MappingFailure):
            async with self.db.transaction() as conn:
                errors = _dicts(mapped.result.errors)
                await store.record_outcome(conn, event_id, "failed", errors, mapped.subject, None, None)
                await _raise(conn, event_id, event.vendor, _summary(mapped.result), principal.name)
            return
        state = mapped.result
        async with self.db.transaction() as conn:
            contract_id = await store.find_contract_id(conn, state.contract.source, state.contract.external_id)
            await store.record_outcome(conn, event_id, "mapped", [], mapped.subject, contract_id, state.version)
            await record_audit(conn, principal.name, "inbound_event.replay", "inbound_event", str(event_id))
        try:
            await self._take(event_id, state, principal)
        except DomainError as exc:
            if exc.status >= 500:
                raise
            async with self.db.transaction() as conn:
                refused = f"maps now, but was refused: {exc.code}: {exc.detail}"
                await _raise(conn, event_id, event.vendor, refused, principal.name)

    async def _take(self, event_id: uuid.UUID, state: ContractState, principal: Principal) -> IntakeResult:
        """Hand a mapped state to the contracts process and record what became of the event."""
        try:
            result = await self.contracts.receive_contract_state(state, principal)
        except DomainError as exc:
            # Refused by the rules (409/422): rejected, the caller has the reason. An outage (5xx) is no
            # verdict on the payload: it stays mapped, with the error, and the CRM sends it again.
            status = "rejected" if exc.status < 500 else "mapped"
            async with self.db.transaction() as conn:
                await store.record_outcome(conn, event_id, status, _problem_errors(exc), None, None, None)
            raise
        answer = result.answer
        async with self.db.transaction() as conn:
            await store.record_outcome(conn, event_id, "mapped", [], None, answer.id, answer.version)
            await self._resolve_failures(conn, event_id, answer, principal.name)
        return result

    async def _resolve_failures(
        self, conn: Connection, event_id: uuid.UUID, answer: ContractRegistered | AmendmentApplied, actor: str
    ) -> None:
        taken = f"taken as version {answer.version} of contract {answer.id}"
        for failed_event in await store.failed_events_superseded_by(conn, event_id):
            own = failed_event == event_id
            note = f"replayed and {taken}" if own else f"superseded by event {event_id}, {taken}"
            await resolve_exceptions(conn, "inbound_event", str(failed_event), [MAPPING_FAILED], actor=actor, note=note)


async def _raise(conn: Connection, event_id: uuid.UUID, vendor: str, detail: str, actor: str) -> uuid.UUID:
    """Open the event's MAPPING_FAILED item, or count one more failure on the open one."""
    group_key = f"{MAPPING_FAILED}:{vendor}"  # one mapping fix repairs the vendor's group: retry it at once
    raised = await raise_exception(
        conn, MAPPING_FAILED, "inbound_event", str(event_id), detail, ["retry"], group_key, actor=actor
    )
    return raised.id


def _dicts(errors: list[FieldError]) -> list[dict[str, Any]]:
    return [error.as_dict() for error in errors]


def _problem_errors(exc: DomainError) -> list[dict[str, Any]]:
    return _dicts(exc.errors) if exc.errors else [FieldError([], exc.detail, exc.code).as_dict()]


def _summary(failure: MappingFailure) -> str:
    """The failure in one line for the work queue: the detail and the first error, by its vendor field."""
    if not failure.errors:
        return failure.detail
    first = failure.errors[0]
    where = "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in first.loc[1:]).lstrip(".")
    return f"{failure.detail}; first: {where or 'body'}: {first.msg}"
