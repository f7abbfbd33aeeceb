"""Work items as the exceptions service moves them: read one (locked) or a group's retryable
members, and write an operator's step or a retry into the item and its history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.access import Principal, scope_clause
from app.db import Connection
from app.observability import correlation_id
from process_apis.exceptions.rules import Step
from process_apis.exceptions.store import EVENT_FIELDS, record_exception_event

__all__ = [
    "WorkItem",
    "count_resolved",
    "find_work_item",
    "open_work_items_in_group",
    "record_retry",
    "record_step",
]


@dataclass(frozen=True)
class WorkItem:
    """What an action on an exception needs to know about it."""

    id: uuid.UUID
    code: str
    status: str
    owner: str | None
    subject_type: str
    subject_id: str
    actions: list[str]
    seen_at: datetime  # the database's time when it was read: a retry's history is dated from it

    @property
    def retryable(self) -> bool:
        return self.status != "resolved" and "retry" in self.actions


_SCOPED = "exception e left join contract c on c.id = e.contract_id left join customer cu on cu.id = c.customer_id"
_ITEM = "select e.id, e.code, e.status, e.owner, e.subject_type, e.subject_id, e.actions, now() as seen_at"


def _item(r: Any) -> WorkItem:
    return WorkItem(
        r["id"],
        r["code"],
        r["status"],
        r["owner"],
        r["subject_type"],
        r["subject_id"],
        list(r["actions"]),
        r["seen_at"],
    )


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


async def record_step(
    conn: Connection, item: WorkItem, step: Step, actor: str, owner: str | None, note: str | None
) -> None:
    """Apply an operator's step (acknowledged, resolved, assigned) to a locked item, with its history and event.

    ``owner`` is the owner after the step (the caller decides whether it changes).
    """
    row = await conn.fetchrow(
        f"""with changed as (
                update exception set status = $2, owner = $3, note = coalesce($4, note),
                       resolved_at = case when $2 = 'resolved' then now() else resolved_at end, updated_at = now()
                where id = $1
                returning {EVENT_FIELDS}
            ), logged as (
                insert into exception_transition (exception_id, action, from_status, to_status, actor, owner,
                                                  note, correlation_id)
                select id, $5, $6, status, $7, owner, $4, $8 from changed
            )
            select * from changed""",
        item.id,
        step.to_status,
        owner,
        note,
        step.action,
        item.status,
        actor,
        correlation_id(),
    )
    await record_exception_event(conn, f"exception.{step.action}", row, actor=actor)


async def record_retry(conn: Connection, items: Sequence[WorkItem], actor: str, note: str | None) -> None:
    """History for members a retry re-drove, dated when the retry read them: before anything it caused."""
    await conn.execute(
        """with retried as (
               update exception set note = coalesce($4, note), updated_at = now()
               where id = any($1::uuid[])
               returning id, owner
           )
           insert into exception_transition (exception_id, action, from_status, to_status, actor, owner, note,
                                             correlation_id, at)
           select r.id, 'retried', item.status, item.status, $3, r.owner, $4, $5, item.seen_at
           from retried r join unnest($1::uuid[], $2::text[], $6::timestamptz[]) as item(id, status, seen_at)
                on item.id = r.id""",
        [i.id for i in items],
        [i.status for i in items],
        actor,
        note,
        correlation_id(),
        [i.seen_at for i in items],
    )


async def count_resolved(conn: Connection, ids: list[uuid.UUID]) -> int:
    resolved: int = await conn.fetchval(
        "select count(*) from exception where id = any($1::uuid[]) and status = 'resolved'", ids
    )
    return resolved
