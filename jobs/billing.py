"""Quote, post and report invoices."""

from __future__ import annotations

import uuid
from typing import Any

from app.errors import BackendUnavailable
from jobs.retry import bind_correlation, is_final_attempt, retry_later


async def quote_invoice(ctx: dict[str, Any], invoice_id: str, correlation_id: str | None = None) -> str:
    bind_correlation(ctx, correlation_id)
    try:
        status: str = await ctx["services"].billing.quote_invoice(uuid.UUID(invoice_id))
        return status
    except BackendUnavailable as exc:
        if is_final_attempt(ctx):
            raise  # the draft stays; the sweeper queues it again later
        raise retry_later(ctx, exc) from exc


async def post_invoice(ctx: dict[str, Any], invoice_id: str, correlation_id: str | None = None) -> str:
    bind_correlation(ctx, correlation_id)
    try:
        status: str = await ctx["services"].billing.post_invoice(uuid.UUID(invoice_id), is_final_attempt(ctx))
        return status
    except BackendUnavailable as exc:
        if is_final_attempt(ctx):
            raise
        raise retry_later(ctx, exc) from exc


async def notify_billed(ctx: dict[str, Any], invoice_id: str, correlation_id: str | None = None) -> int:
    bind_correlation(ctx, correlation_id)
    try:
        count: int = await ctx["services"].billing.notify_billed(uuid.UUID(invoice_id))
        return count
    except BackendUnavailable as exc:
        if is_final_attempt(ctx):
            raise
        raise retry_later(ctx, exc) from exc
