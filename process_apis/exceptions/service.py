"""Working exceptions: acknowledge, resolve, and retry (fix once, replay many)."""

from __future__ import annotations

import uuid
from typing import Any

from app.db import Database
from app.errors import Conflict, NotFound
from app.outbox import record_audit, record_event
from process_apis.billing.service import BillingService
from process_apis.contracts.service import ContractService
from process_apis.exceptions import queries

__all__ = ["ExceptionService"]


class ExceptionService:
    def __init__(self, db: Database, contracts: ContractService, billing: BillingService) -> None:
        self.db, self.contracts, self.billing = db, contracts, billing

    async def transition(
        self, exception_id: uuid.UUID, status: str, note: str | None, owner: str | None, actor: str | None
    ) -> dict[str, Any]:
        async with self.db.transaction() as conn:
            row = await conn.fetchrow(
                """update exception set status = $2, note = coalesce($3, note), owner = coalesce($4, owner),
                          resolved_at = case when $2 = 'resolved' then now() else resolved_at end,
                          updated_at = now()
                   where id = $1 returning id""",
                exception_id,
                status,
                note,
                owner,
            )
            if row is None:
                raise NotFound(f"exception {exception_id} does not exist")
            await record_event(conn, f"exception.{status}", "exception", str(exception_id), {"owner": owner})
            await record_audit(conn, actor, f"exception.{status}", "exception", str(exception_id), {"note": note})
            return await queries.get_exception(conn, exception_id)

    async def retry(self, exception_id: uuid.UUID, note: str | None, actor: str | None) -> dict[str, Any]:
        async with self.db.connection() as conn:
            item = await queries.get_exception(conn, exception_id)
        await self._replay(item, actor)
        async with self.db.transaction() as conn:
            await conn.execute(
                "update exception set note = coalesce($2, note), updated_at = now() where id = $1", exception_id, note
            )
            await record_audit(conn, actor, "exception.retry", "exception", str(exception_id), {"note": note})
            return await queries.get_exception(conn, exception_id)

    async def retry_group(self, group_key: str, actor: str | None) -> dict[str, Any]:
        async with self.db.connection() as conn:
            page = await queries.list_exceptions(conn, {"group_key": group_key}, 1000, None)
        items = [i for i in page["items"] if i["status"] != "resolved" and "retry" in i["actions"]]
        if not items:
            raise NotFound(f"no open retryable exceptions in group {group_key}")
        for item in items:
            await self._replay(item, actor)
        async with self.db.connection() as conn:
            after = await queries.list_exceptions(conn, {"group_key": group_key}, 1000, None)
        return {
            "group_key": group_key,
            "retried": len(items),
            "resolved": sum(1 for i in after["items"] if i["status"] == "resolved"),
        }

    async def _replay(self, item: dict[str, Any], actor: str | None) -> None:
        if item["status"] == "resolved" or "retry" not in item["actions"]:
            raise Conflict(f"exception {item['id']} has no retry action now", "NOT_RETRYABLE")
        subject_type, subject_id = item["subject"]["type"], uuid.UUID(item["subject"]["id"])
        if subject_type == "invoice":
            await self.billing.retry_invoice(subject_id, actor)
        elif item["code"] == "PROPAGATION_FAILED":
            await self.contracts.repropagate(subject_id, actor)
        elif subject_type == "contract":
            await self.contracts.recheck_governance(subject_id, actor)
        else:
            raise Conflict(f"exceptions on {subject_type} cannot be retried", "NOT_RETRYABLE")
