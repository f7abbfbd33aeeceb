"""Re-enqueue every intent whose job is gone: PostgreSQL is the truth, Redis only a buffer.

A lost Redis (or a worker killed between commit and enqueue) loses no work: invoices left
``draft``/``queued``/``posting``, posted invoices whose PSA/CRM feedback is still due, and
unconfirmed propagations are found here and queued again under their deterministic job ids,
which arq de-duplicates while a job is live.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from app.db import Database
from app.tasks import TaskQueue
from process_apis.billing.service import feedback_job_id, post_job_id, quote_job_id
from process_apis.contracts.service import propagation_job_id

__all__ = ["RecoveryService", "requeue_invoice"]


async def requeue_invoice(queue: TaskQueue, invoice_id: uuid.UUID, status: str) -> bool:
    """Queue the job a stuck invoice waits for: its quote while a draft, else its posting."""
    if status == "draft":
        return await queue.enqueue("quote_invoice", str(invoice_id), job_id=quote_job_id(invoice_id))
    return await queue.enqueue("post_invoice", str(invoice_id), job_id=post_job_id(invoice_id))


class RecoveryService:
    def __init__(self, db: Database, queue: TaskQueue, grace: timedelta = timedelta(seconds=30)) -> None:
        self.db, self.queue, self.grace = db, queue, grace

    async def sweep(self) -> dict[str, int]:
        async with self.db.connection() as conn:
            invoices = await conn.fetch(
                """select id, status from invoice
                   where status in ('draft', 'queued', 'posting') and updated_at < now() - $1::interval""",
                self.grace,
            )
            feedback = await conn.fetch(
                """select id from invoice
                   where feedback_due_at < now() - $1::interval and feedback_done_at is null""",
                self.grace,
            )
            propagations = await conn.fetch(
                """select distinct p.contract_id, p.version from propagation p
                   join contract c on c.id = p.contract_id
                   where c.status = 'active' and p.status = 'pending' and p.updated_at < now() - $1::interval""",
                self.grace,
            )
        counts = {"quote": 0, "post": 0, "feedback": 0, "propagate": 0}
        for row in invoices:
            counts["quote" if row["status"] == "draft" else "post"] += await requeue_invoice(
                self.queue, row["id"], row["status"]
            )
        for row in feedback:
            counts["feedback"] += await self.queue.enqueue(
                "notify_billed", str(row["id"]), job_id=feedback_job_id(row["id"])
            )
        for row in propagations:
            counts["propagate"] += await self.queue.enqueue(
                "propagate_contract",
                str(row["contract_id"]),
                str(row["version"]),
                job_id=propagation_job_id(row["contract_id"], row["version"]),
            )
        return counts
