"""Outbox events and audit records, written in the same transaction as the change they describe."""

from __future__ import annotations

from typing import Any

from app.db import Connection
from app.observability import correlation_id

__all__ = ["record_audit", "record_event"]


async def record_event(
    conn: Connection, event_type: str, subject_type: str, subject_id: str, payload: dict[str, Any]
) -> None:
    await conn.execute(
        """insert into outbox_event (event_type, subject_type, subject_id, payload, correlation_id)
           values ($1, $2, $3, $4, $5)""",
        event_type,
        subject_type,
        subject_id,
        payload,
        correlation_id(),
    )


async def record_audit(
    conn: Connection,
    actor: str | None,
    action: str,
    subject_type: str,
    subject_id: str,
    detail: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        """insert into audit_record (actor, action, subject_type, subject_id, detail, correlation_id)
           values ($1, $2, $3, $4, $5, $6)""",
        actor,
        action,
        subject_type,
        subject_id,
        detail or {},
        correlation_id(),
    )
