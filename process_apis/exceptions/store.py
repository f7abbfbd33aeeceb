"""Exceptions as work items: one open row per (code, subject); repeats bump its count."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from app.access import Principal, scope_clause
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
                                  detail, actions, correlation_id, contract_id)
           values ($1, $2, $3, $4, $5, $6, now() + $7::interval, $8, $9, $10, $11)
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
        await _contract_of(conn, subject_type, subject_id),
    )
    return RaisedException(row["id"], code, detail)


async def _contract_of(conn: Connection, subject_type: str, subject_id: str) -> uuid.UUID | None:
    """The contract a subject belongs to: what scopes the exception for project managers."""
    if subject_type == "contract":
        return uuid.UUID(subject_id)
    if subject_type == "invoice":
        contract_id: uuid.UUID | None = await conn.fetchval(
            "select contract_id from invoice where id = $1", uuid.UUID(subject_id)
        )
        return contract_id
    return None


async def resolve_exceptions(conn: Connection, subject_type: str, subject_id: str, codes: list[str]) -> None:
    await conn.execute(
        """update exception set status = 'resolved', resolved_at = now(), updated_at = now()
           where subject_type = $1 and subject_id = $2 and code = any($3) and status <> 'resolved'""",
        subject_type,
        subject_id,
        codes,
    )


@dataclass(frozen=True)
class WorkItem:
    """What an action on an exception needs to know about it."""

    id: uuid.UUID
    code: str
    status: str
    subject_type: str
    subject_id: str
    actions: list[str]

    @property
    def retryable(self) -> bool:
        return self.status != "resolved" and "retry" in self.actions


_SCOPED = "exception e left join contract c on c.id = e.contract_id left join customer cu on cu.id = c.customer_id"
_ITEM = "select e.id, e.code, e.status, e.subject_type, e.subject_id, e.actions"


def _item(r: Any) -> WorkItem:
    return WorkItem(r["id"], r["code"], r["status"], r["subject_type"], r["subject_id"], list(r["actions"]))


async def find_work_item(
    conn: Connection, exception_id: uuid.UUID, principal: Principal, for_update: bool = False
) -> WorkItem | None:
    row = await conn.fetchrow(
        f"{_ITEM} from {_SCOPED} where e.id = $1 and {scope_clause(2)}" + (" for update of e" if for_update else ""),
        exception_id,
        *principal.scope_args(),
    )
    return _item(row) if row else None


async def open_work_items_in_group(conn: Connection, group_key: str, principal: Principal) -> list[WorkItem]:
    rows = await conn.fetch(
        f"""{_ITEM} from {_SCOPED}
           where e.group_key = $1 and e.status <> 'resolved' and 'retry' = any(e.actions) and {scope_clause(2)}
           order by e.created_at, e.id""",
        group_key,
        *principal.scope_args(),
    )
    return [_item(r) for r in rows]


async def count_resolved(conn: Connection, ids: list[uuid.UUID]) -> int:
    resolved: int = await conn.fetchval(
        "select count(*) from exception where id = any($1) and status = 'resolved'", ids
    )
    return resolved
