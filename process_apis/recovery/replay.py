"""Replay: re-drive failed or stuck work from the command line (``psbridge replay``).

Finds, per kind, what did not finish — invoices ``failed``, ``blocked``, or ``draft``/``queued``/
``posting`` past the grace period; propagations ``failed`` or ``pending`` past it; billed feedback
due past it or refused — and re-drives each the way its work item's ``retry`` or the sweeper would.
A dry run lists the same items and does nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from app.db import Database
from app.errors import DomainError
from app.tasks import TaskQueue
from process_apis.billing.service import BillingService, feedback_job_id
from process_apis.contracts.service import ContractService, propagation_job_id
from process_apis.recovery.service import requeue_invoice

__all__ = ["KINDS", "ReplayItem", "ReplayService"]

ReplayKind = Literal["invoices", "propagations", "feedback"]
KINDS: tuple[ReplayKind, ...] = ("invoices", "propagations", "feedback")
_INVOICE_ACTIONS = {
    "failed": "post again", "blocked": "quote again", "draft": "quote", "queued": "post", "posting": "post",
}  # fmt: skip


@dataclass(frozen=True)
class ReplayItem:
    kind: ReplayKind
    subject_id: uuid.UUID
    state: str  # what it is now (an invoice's status, "failed"/"pending", "due"/"refused")
    action: str  # what replay does to it


class ReplayService:
    def __init__(
        self,
        db: Database,
        queue: TaskQueue,
        billing: BillingService,
        contracts: ContractService,
        grace: timedelta = timedelta(seconds=30),
    ) -> None:
        self.db, self.queue, self.billing, self.contracts, self.grace = db, queue, billing, contracts, grace

    async def find(self, kinds: Sequence[ReplayKind] = KINDS) -> list[ReplayItem]:
        items: list[ReplayItem] = []
        async with self.db.connection() as conn:
            if "invoices" in kinds:
                for r in await conn.fetch(
                    """select id, status from invoice
                       where status in ('failed', 'blocked')
                          or (status in ('draft', 'queued', 'posting') and updated_at < now() - $1::interval)
                       order by created_at, id""",
                    self.grace,
                ):
                    action = {"failed": "post again", "blocked": "quote again", "draft": "quote"}.get(
                        r["status"], "post"
                    )
                    items.append(ReplayItem("invoices", r["id"], r["status"], action))
            if "propagations" in kinds:
                for r in await conn.fetch(
                    """select contract_id, bool_or(status = 'failed') as failed from propagation
                       where status = 'failed' or (status = 'pending' and updated_at < now() - $1::interval)
                       group by contract_id order by contract_id""",
                    self.grace,
                ):
                    state = "failed" if r["failed"] else "pending"
                    items.append(ReplayItem("propagations", r["contract_id"], state, "propagate again"))
            if "feedback" in kinds:
                for r in await conn.fetch(
                    """select id, feedback_due_at is null as refused from invoice
                       where status = 'posted' and feedback_done_at is null
                         and (feedback_due_at < now() - $1::interval
                              or (feedback_due_at is null and posted_at is not null
                                  and exists (select 1 from exception x where x.subject_type = 'invoice'
                                              and x.subject_id = invoice.id::text and x.code = 'FEEDBACK_REJECTED'
                                              and x.status <> 'resolved')))
                       order by posted_at, id""",
                    self.grace,
                ):
                    state = "refused" if r["refused"] else "due"
                    items.append(ReplayItem("feedback", r["id"], state, "tell PSA and CRM again"))
        return items

    async def replay(self, item: ReplayItem, actor: str | None) -> str | None:
        """Re-drive one item; None when it went, else why it was skipped (it moved on meanwhile, say)."""
        try:
            if item.kind == "invoices" and item.state in ("failed", "blocked"):
                await self.billing.retry_invoice(item.subject_id, actor)
            elif item.kind == "invoices":
                await requeue_invoice(self.queue, item.subject_id, item.state)
            elif item.kind == "propagations":
                if item.state == "failed":
                    await self.contracts.repropagate(item.subject_id, actor)
                else:
                    async with self.db.connection() as conn:
                        versions = await conn.fetch(
                            "select distinct version from propagation where contract_id = $1 and status = 'pending'",
                            item.subject_id,
                        )
                    for v in versions:
                        await self.queue.enqueue(
                            "propagate_contract", str(item.subject_id), str(v["version"]),
                            job_id=propagation_job_id(item.subject_id, v["version"]),
                        )  # fmt: skip
            elif item.state == "refused":
                await self.billing.retry_invoice(item.subject_id, actor)
            else:
                await self.queue.enqueue("notify_billed", str(item.subject_id), job_id=feedback_job_id(item.subject_id))
        except DomainError as exc:
            return f"{exc.code}: {exc.detail}"
        return None
