"""Quote, post and report invoices."""

from __future__ import annotations

import uuid

from jobs.context import JobContext
from jobs.retry import attempt


async def quote_invoice(ctx: JobContext, invoice_id: str, correlation_id: str | None = None) -> str:
    # On the last failed try the draft simply stays a draft: the sweeper queues it again later.
    billing = ctx["services"].billing
    return await attempt(
        ctx, "quote_invoice", correlation_id, lambda final: billing.quote_invoice(uuid.UUID(invoice_id))
    )


async def post_invoice(ctx: JobContext, invoice_id: str, correlation_id: str | None = None) -> str:
    billing = ctx["services"].billing
    return await attempt(
        ctx, "post_invoice", correlation_id, lambda final: billing.post_invoice(uuid.UUID(invoice_id), final)
    )


async def notify_billed(ctx: JobContext, invoice_id: str, correlation_id: str | None = None) -> int:
    billing = ctx["services"].billing
    return await attempt(
        ctx, "notify_billed", correlation_id, lambda final: billing.notify_billed(uuid.UUID(invoice_id))
    )
