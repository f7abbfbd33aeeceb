"""Exceptions as work items: one open row per (code, subject); repeats bump its count."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from app.db import Connection
from app.observability import correlation_id

QUEUES = {
    # Which team owns which failure: integration fixes plumbing, finance money, delivery the work.
    "CUSTOMER_NOT_IN_ERP": "integration",
    "LEGAL_ENTITY_MISMATCH": "integration",
    "UNKNOWN_LEGAL_ENTITY": "integration",
    "CURRENCY_NOT_ALLOWED": "finance",
    "UNKNOWN_TAX_JURISDICTION": "finance",
    "MILESTONES_DO_NOT_SUM": "finance",
    "TAX_VALIDATION_FAILED": "finance",
    "ERP_POSTING_FAILED": "integration",
    "PROPAGATION_FAILED": "integration",
    "CONTRACT_BLOCKED": "delivery",
}
SLA = {"integration": timedelta(hours=4), "finance": timedelta(hours=24), "delivery": timedelta(hours=48)}


@dataclass(frozen=True)
class RaisedException:
    id: uuid.UUID
    code: str
    detail: str


async def raise_exception(
    conn: Connection,
    code: str,
    subject_type: str,
    subject_id: str,
    detail: str,
    actions: list[str] | None = None,
    group_key: str | None = None,
) -> RaisedException:
    queue = QUEUES.get(code, "integration")
    row = await conn.fetchrow(
        """insert into exception (id, code, queue, subject_type, subject_id, group_key, sla_due_at,
                                  detail, actions, correlation_id)
           values ($1, $2, $3, $4, $5, $6, now() + $7::interval, $8, $9, $10)
           on conflict (code, subject_type, subject_id) where status <> 'resolved'
           do update set count = exception.count + 1, detail = excluded.detail, updated_at = now()
           returning id""",
        uuid.uuid4(),
        code,
        queue,
        subject_type,
        subject_id,
        group_key or code,
        SLA[queue],
        detail,
        actions or [],
        correlation_id(),
    )
    return RaisedException(row["id"], code, detail)


async def resolve_exceptions(conn: Connection, subject_type: str, subject_id: str, codes: list[str]) -> None:
    await conn.execute(
        """update exception set status = 'resolved', resolved_at = now(), updated_at = now()
           where subject_type = $1 and subject_id = $2 and code = any($3) and status <> 'resolved'""",
        subject_type,
        subject_id,
        codes,
    )
