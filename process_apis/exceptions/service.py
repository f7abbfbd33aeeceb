"""Working exceptions: acknowledge, assign, resolve, retry one or a whole group (fix once, replay many),
and tune the queue and SLA of a kind."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from app.access import Principal
from app.db import Connection, Database
from app.errors import Conflict, DomainError, NotFound
from app.outbox import record_audit
from process_apis.billing.service import BillingService
from process_apis.contracts.service import ContractService
from process_apis.exceptions import kinds, work_items
from process_apis.exceptions.rules import Sla, assignment_step, status_step
from process_apis.exceptions.views import ExceptionKind
from process_apis.exceptions.work_items import WorkItem
from process_apis.intake.service import IntakeService
from process_apis.work.service import WorkService

__all__ = ["ExceptionService", "GroupRetry", "SkippedMember"]


@dataclass(frozen=True)
class SkippedMember:
    id: uuid.UUID
    code: str
    reason: str


@dataclass(frozen=True)
class GroupRetry:
    group_key: str
    retried: int  # re-driven by this call
    resolved: int  # of those, resolved when the call ends
    skipped: tuple[SkippedMember, ...] = ()


class ExceptionService:
    def __init__(
        self,
        db: Database,
        contracts: ContractService,
        billing: BillingService,
        intake: IntakeService,
        work: WorkService,
    ) -> None:
        self.db, self.contracts, self.billing, self.intake, self.work = db, contracts, billing, intake, work

    async def transition(
        self,
        exception_id: uuid.UUID,
        status: Literal["acknowledged", "resolved"],
        note: str | None,
        owner: str | None,
        principal: Principal,
    ) -> None:
        """Acknowledge or resolve; ``owner`` None keeps the current owner."""
        async with self.db.transaction() as conn:
            item = await self._locked(conn, exception_id, principal)
            step = status_step(item.status, status, item.owner, owner, note)
            if step is None:
                return  # a repeat that brings nothing new changes nothing
            new_owner = owner if owner is not None else item.owner
            await work_items.record_step(conn, item, step, principal.name, new_owner, note)
            await record_audit(
                conn, principal.name, f"exception.{step.action}", "exception", str(exception_id), {"note": note}
            )

    async def assign(self, exception_id: uuid.UUID, owner: str | None, note: str | None, principal: Principal) -> None:
        """Give an unresolved exception to someone (``owner`` None: to nobody); its status stays."""
        async with self.db.transaction() as conn:
            item = await self._locked(conn, exception_id, principal)
            step = assignment_step(item.status, item.owner, owner, note)
            if step is None:
                return
            await work_items.record_step(conn, item, step, principal.name, owner, note)
            await record_audit(
                conn, principal.name, "exception.assigned", "exception", str(exception_id), {"note": note}
            )

    async def _locked(self, conn: Connection, exception_id: uuid.UUID, principal: Principal) -> WorkItem:
        item = await work_items.find_work_item(conn, exception_id, principal, for_update=True)
        if item is None:
            raise NotFound(f"exception {exception_id} does not exist")
        return item

    async def retry(self, exception_id: uuid.UUID, note: str | None, principal: Principal) -> None:
        """Replay the step that failed; its errors (409 in flight, 503 backend down) are the answer."""
        async with self.db.connection() as conn:
            item = await work_items.find_work_item(conn, exception_id, principal)
        if item is None:
            raise NotFound(f"exception {exception_id} does not exist")
        await self._replay(item, principal)
        await self._record_retry(item, note, principal)

    async def retry_group(self, group_key: str, note: str | None, principal: Principal) -> GroupRetry:
        """Re-drive every member open and retryable now; one that cannot go (already in flight, not
        retryable any more, its backend down) is skipped with the reason and the others go on.

        Members are re-driven one after the other: a group is usually one outage's worth of work,
        and their backend calls share one rate limit anyway.
        """
        async with self.db.connection() as conn:
            members = await work_items.open_work_items_in_group(conn, group_key, principal)
        if not members:
            raise NotFound(f"no open retryable exceptions in group {group_key}")
        retried: list[WorkItem] = []
        skipped: list[SkippedMember] = []
        for item in members:
            try:
                await self._replay(item, principal)
            except DomainError as exc:
                # A member's answer, not the group's: a Conflict (an invoice already posting, a
                # member resolved meanwhile) or BackendUnavailable re-drove nothing, so it is skipped
                # and stays open for the next retry.
                skipped.append(SkippedMember(item.id, item.code, f"{exc.code}: {exc.detail}"))
                continue
            await self._record_retry(item, note, principal)
            retried.append(item)
        async with self.db.connection() as conn:
            resolved = await work_items.count_resolved(conn, [i.id for i in retried])
        return GroupRetry(group_key, len(retried), resolved, tuple(skipped))

    async def _record_retry(self, item: WorkItem, note: str | None, principal: Principal) -> None:
        # Right after its own replay, so what was re-driven is on record even if a later member fails.
        async with self.db.transaction() as conn:
            await work_items.record_retry(conn, [item], principal.name, note)
            await record_audit(conn, principal.name, "exception.retry", "exception", str(item.id), {"note": note})

    async def _replay(self, item: WorkItem, principal: Principal) -> None:
        actor = principal.name
        if not item.retryable:
            raise Conflict(f"exception {item.id} has no retry action now", "NOT_RETRYABLE")
        subject_id = uuid.UUID(item.subject_id)
        if item.subject_type == "invoice":
            await self.billing.retry_invoice(subject_id, actor)
        elif item.subject_type == "inbound_event":
            await self.intake.replay(subject_id, principal)
        elif item.code == "FX_RATE_MISSING":
            await self.work.reprice_fx([subject_id])
        elif item.code == "PROPAGATION_FAILED":
            await self.contracts.repropagate(subject_id, actor)
        elif item.subject_type == "contract":
            await self.contracts.recheck_governance(subject_id, actor)
        else:
            raise Conflict(f"exceptions on {item.subject_type} cannot be retried", "NOT_RETRYABLE")

    async def put_kind(
        self, code: str, queue: str, sla: Sla, description: str | None, principal: Principal
    ) -> ExceptionKind:
        """Change a kind's queue and SLA. Exceptions opened afterwards follow it; open ones keep theirs."""
        async with self.db.transaction() as conn:
            kind = await kinds.update_exception_kind(conn, code, queue, sla, description)
            if kind is None:
                raise NotFound(f"psbridge raises no exception with code {code}", "UNKNOWN_EXCEPTION_KIND")
            await record_audit(
                conn, principal.name, "exception_kind.put", "exception_kind", code, {"queue": queue, "sla": kind.sla}
            )
        return kind
