"""Working exceptions: acknowledge, resolve, and retry (fix once, replay many)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.access import Principal
from app.db import Database
from app.errors import Conflict, NotFound
from app.outbox import record_audit, record_event
from process_apis.billing.service import BillingService
from process_apis.contracts.service import ContractService
from process_apis.exceptions import store
from process_apis.exceptions.rules import check_transition
from process_apis.exceptions.store import WorkItem
from process_apis.intake.service import IntakeService

__all__ = ["ExceptionService", "GroupRetry"]


@dataclass(frozen=True)
class GroupRetry:
    group_key: str
    retried: int
    resolved: int


class ExceptionService:
    def __init__(
        self, db: Database, contracts: ContractService, billing: BillingService, intake: IntakeService
    ) -> None:
        self.db, self.contracts, self.billing, self.intake = db, contracts, billing, intake

    async def transition(
        self, exception_id: uuid.UUID, status: str, note: str | None, owner: str | None, principal: Principal
    ) -> None:
        async with self.db.transaction() as conn:
            item = await store.find_work_item(conn, exception_id, principal, for_update=True)
            if item is None:
                raise NotFound(f"exception {exception_id} does not exist")
            if not check_transition(item.status, status) and status == "resolved":
                return  # resolving a resolved exception again changes nothing
            await conn.execute(
                """update exception set status = $2, note = coalesce($3, note), owner = coalesce($4, owner),
                          resolved_at = case when $2 = 'resolved' then now() else resolved_at end,
                          updated_at = now()
                   where id = $1""",
                exception_id,
                status,
                note,
                owner,
            )
            await record_event(conn, f"exception.{status}", "exception", str(exception_id), {"owner": owner})
            await record_audit(
                conn, principal.name, f"exception.{status}", "exception", str(exception_id), {"note": note}
            )

    async def retry(self, exception_id: uuid.UUID, note: str | None, principal: Principal) -> None:
        async with self.db.connection() as conn:
            item = await store.find_work_item(conn, exception_id, principal)
        if item is None:
            raise NotFound(f"exception {exception_id} does not exist")
        await self._replay(item, principal)
        async with self.db.transaction() as conn:
            await conn.execute(
                "update exception set note = coalesce($2, note), updated_at = now() where id = $1", exception_id, note
            )
            await record_audit(conn, principal.name, "exception.retry", "exception", str(exception_id), {"note": note})

    async def retry_group(self, group_key: str, principal: Principal) -> GroupRetry:
        async with self.db.connection() as conn:
            items = await store.open_work_items_in_group(conn, group_key, principal)
        if not items:
            raise NotFound(f"no open retryable exceptions in group {group_key}")
        for item in items:
            await self._replay(item, principal)
        async with self.db.connection() as conn:
            resolved = await store.count_resolved(conn, [i.id for i in items])
        return GroupRetry(group_key, len(items), resolved)

    async def _replay(self, item: WorkItem, principal: Principal) -> None:
        actor = principal.name
        if not item.retryable:
            raise Conflict(f"exception {item.id} has no retry action now", "NOT_RETRYABLE")
        subject_id = uuid.UUID(item.subject_id)
        if item.subject_type == "invoice":
            await self.billing.retry_invoice(subject_id, actor)
        elif item.subject_type == "inbound_event":
            await self.intake.replay(subject_id, principal)
        elif item.code == "PROPAGATION_FAILED":
            await self.contracts.repropagate(subject_id, actor)
        elif item.subject_type == "contract":
            await self.contracts.recheck_governance(subject_id, actor)
        else:
            raise Conflict(f"exceptions on {item.subject_type} cannot be retried", "NOT_RETRYABLE")
