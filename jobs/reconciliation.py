"""The nightly reconciliation: every posted invoice against the ERP, as of the day it runs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from jobs.context import JobContext
from jobs.retry import attempt


async def reconcile(ctx: JobContext, correlation_id: str | None = None) -> str:
    reconciliation = ctx["services"].reconciliation
    today = datetime.now(UTC).date()

    async def run(final: bool) -> str:
        reconciliation_id: uuid.UUID = await reconciliation.run(today, None)
        return str(reconciliation_id)

    return await attempt(ctx, "reconcile", correlation_id, run)
