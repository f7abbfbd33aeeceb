"""Exceptions as work items: raising and resolving them (what every workflow calls), with history.

One unresolved row per (code, subject): a repeat bumps its ``count`` and writes a ``repeated``
transition instead of opening another. Its queue and SLA come from ``exception_kind`` (data, read
by the insert itself), so an operator's change applies to exceptions opened afterwards. Every
change writes an ``exception_transition`` row, and all but a repeat or a retry also write an
outbox event (``exception.opened|acknowledged|assigned|resolved``), in the caller's transaction.
Operators' steps are in ``work_items``. Steps psbridge takes by itself (opened, repeated,
resolved because the failed step succeeded) have actor null: actors are API client names, and
null cannot be mistaken for one.

Group keys say what one fix repairs, so "fix once, retry the group" replays exactly what that fix
unblocks:

- ``ERP_POSTING_FAILED`` — every invoice the ERP did not take: one outage, or one fix on the ERP side.
- ``TAX_VALIDATION_FAILED:<customer external id>`` — invoices the tax API refused for one customer:
  the customer's tax data is fixed once (``customer_group_key``).
- governance findings by what one fix repairs (``process_apis/contracts/rules.py`` ``Finding``):
  ``CUSTOMER_NOT_IN_ERP:<customer>`` and ``LEGAL_ENTITY_MISMATCH:<customer>`` (fix the customer
  master once), ``UNKNOWN_LEGAL_ENTITY:<entity>``, ``CURRENCY_NOT_ALLOWED:<entity>:<currency>``,
  ``UNKNOWN_TAX_JURISDICTION:<jurisdiction>``; ``MILESTONES_DO_NOT_SUM`` is the contract's own.
- ``PROPAGATION_FAILED:<psa|erp>`` — one backend down, many contracts.
- ``MAPPING_FAILED:<vendor>`` — one mapping fix replays every payload it failed.
- the code itself — the default for anything else.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from app.db import Connection
from app.observability import correlation_id
from app.outbox import record_event

__all__ = [
    "EVENT_FIELDS",
    "RaisedException",
    "customer_group_key",
    "raise_exception",
    "record_exception_event",
    "resolve_exceptions",
]

# What an event about an exception says, whatever the step: enough to route it without a read back.
EVENT_FIELDS = "id, code, queue, status, subject_type, subject_id, group_key, owner"


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
    *,
    actor: str | None = None,
) -> RaisedException:
    """Open an exception, or count a repeat of the open one (same code and subject).

    ``group_key`` defaults to the code; ``actor`` is null when psbridge raises it by itself.
    """
    row = await conn.fetchrow(
        f"""with kind as (
                -- An unknown code still lands where someone looks: the integration queue, with the
                -- 4 hours that queue's own kinds get by default (0003).
                select coalesce(k.queue, 'integration') as queue, coalesce(k.sla, interval '4 hours') as sla
                from (values ($2::text)) raised (code) left join exception_kind k on k.code = raised.code
            ), upserted as (
                insert into exception (id, code, queue, subject_type, subject_id, group_key, sla_due_at,
                                       detail, actions, correlation_id, contract_id)
                select $1, $2, kind.queue, $3, $4, $5, now() + kind.sla, $6, $7, $8, $9 from kind
                on conflict (code, subject_type, subject_id) where status <> 'resolved'
                do update set count = exception.count + 1, detail = excluded.detail,
                              group_key = excluded.group_key, updated_at = now()
                returning {EVENT_FIELDS}, sla_due_at, count, id = $1 as opened
            ), logged as (
                insert into exception_transition (exception_id, action, from_status, to_status, actor, owner,
                                                  correlation_id)
                select id, case when opened then 'opened' else 'repeated' end,
                       case when opened then null else status end, status, $10, owner, $8
                from upserted
            )
            select * from upserted""",
        uuid.uuid4(),
        code,
        subject_type,
        subject_id,
        group_key or code,
        detail,
        actions or [],
        correlation_id(),
        await _contract_of(conn, subject_type, subject_id),
        actor,
    )
    if row["opened"]:  # a repeat is the same work item: no second "opened"
        await record_exception_event(conn, "exception.opened", row, sla_due_at=row["sla_due_at"].isoformat())
    return RaisedException(row["id"], code, detail)


async def customer_group_key(conn: Connection, code: str, contract_id: uuid.UUID) -> str:
    """``<code>:<customer external id>`` of a contract's customer: one fix to that customer repairs the group."""
    customer: str | None = await conn.fetchval(
        "select cu.external_id from contract c join customer cu on cu.id = c.customer_id where c.id = $1",
        contract_id,
    )
    return f"{code}:{customer}" if customer else code


async def _contract_of(conn: Connection, subject_type: str, subject_id: str) -> uuid.UUID | None:
    """The contract a subject belongs to: what scopes the exception for project managers."""
    if subject_type == "contract":
        return uuid.UUID(subject_id)
    if subject_type in ("invoice", "inbound_event"):
        table = "invoice" if subject_type == "invoice" else "inbound_event"
        contract_id: uuid.UUID | None = await conn.fetchval(
            f"select contract_id from {table} where id = $1", uuid.UUID(subject_id)
        )
        return contract_id
    return None


async def resolve_exceptions(
    conn: Connection,
    subject_type: str,
    subject_id: str,
    codes: list[str],
    *,
    actor: str | None = None,
    note: str | None = None,
) -> None:
    """Resolve a subject's unresolved exceptions of these codes: the step that failed has succeeded.

    ``actor`` is null when psbridge saw the success itself (a posting, a quote, a propagation).
    """
    rows = await conn.fetch(
        """with target as (
                select id, status from exception
                where subject_type = $1 and subject_id = $2 and code = any($3::text[]) and status <> 'resolved'
                for update
            ), resolved as (
                update exception e set status = 'resolved', resolved_at = now(), updated_at = now(),
                                       note = coalesce($5, e.note)
                from target where e.id = target.id
                returning e.id, e.code, e.queue, e.status, e.subject_type, e.subject_id, e.group_key, e.owner,
                          target.status as from_status
            ), logged as (
                insert into exception_transition (exception_id, action, from_status, to_status, actor, owner,
                                                  note, correlation_id)
                select id, 'resolved', from_status, 'resolved', $4, owner, $5, $6 from resolved
            )
            select * from resolved order by id""",
        subject_type,
        subject_id,
        codes,
        actor,
        note,
        correlation_id(),
    )
    for row in rows:  # at most one per code of one subject
        await record_exception_event(conn, "exception.resolved", row, actor=actor)


async def record_exception_event(conn: Connection, event_type: str, row: Any, **extra: Any) -> None:
    """An outbox event about an exception; ``row`` has the columns of ``EVENT_FIELDS``."""
    await record_event(
        conn,
        event_type,
        "exception",
        str(row["id"]),
        {
            "code": row["code"],
            "queue": row["queue"],
            "status": row["status"],
            "subject": {"type": row["subject_type"], "id": row["subject_id"]},
            "group_key": row["group_key"],
            "owner": row["owner"],
            **extra,
        },
    )
