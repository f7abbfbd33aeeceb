"""Exception work-item read models, filtered by the principal (a project manager sees its contracts' items)."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field

from app.access import Principal, scope_clause
from app.db import Connection
from app.errors import NotFound
from app.pagination import PageQuery, after_keys, page_of
from process_apis.exceptions.views import (
    ExceptionDetail,
    ExceptionGroup,
    ExceptionGroupPage,
    ExceptionPage,
    ExceptionStatus,
    ExceptionView,
    Queue,
    Subject,
    Transition,
)

__all__ = ["ExceptionFilter", "GroupFilter", "get_exception", "list_exception_groups", "list_exceptions"]

_TEXT = r"^[^\x00-\x1f\x7f]+$"
# A group key is a code (up to 64) and what the fix is about, e.g. a customer external id (up to 200).
GROUP_KEY_MAX = 300
HISTORY_LIMIT = 200
_SCOPED = "exception e left join contract c on c.id = e.contract_id left join customer cu on cu.id = c.customer_id"


class ExceptionFilter(PageQuery):
    status: ExceptionStatus | None = None
    queue: Queue | None = None
    code: str | None = Field(default=None, min_length=1, max_length=64, pattern=_TEXT)
    subject_id: str | None = Field(default=None, min_length=1, max_length=200, pattern=_TEXT)
    group_key: str | None = Field(default=None, min_length=1, max_length=GROUP_KEY_MAX, pattern=_TEXT)


def _view(r: Any) -> dict[str, Any]:
    return dict(
        id=r["id"],
        code=r["code"],
        queue=r["queue"],
        status=r["status"],
        subject=Subject(type=r["subject_type"], id=r["subject_id"]),
        contract_id=r["contract_id"],
        group_key=r["group_key"],
        count=r["count"],
        owner=r["owner"],
        sla_due_at=r["sla_due_at"],
        detail=r["detail"],
        actions=list(r["actions"]),
        note=r["note"],
        correlation_id=r["correlation_id"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


async def get_exception(conn: Connection, exception_id: uuid.UUID, principal: Principal) -> ExceptionDetail:
    row = await conn.fetchrow(
        f"select e.* from {_SCOPED} where e.id = $1 and {scope_clause(2)}", exception_id, *principal.scope_args()
    )
    if row is None:
        raise NotFound(f"exception {exception_id} does not exist")
    # Ordered by time, then insertion: a retry's step is dated when it read the item, before what it caused.
    # A flapping failure repeats without bound; its count says how often, the history shows the latest steps.
    steps = await conn.fetch(
        """select * from (
               select id, action, from_status, to_status, actor, owner, note, at from exception_transition
               where exception_id = $1 order by at desc, id desc limit $2
           ) latest order by at, id""",
        exception_id,
        HISTORY_LIMIT,
    )
    history = [Transition(**{k: v for k, v in s.items() if k != "id"}) for s in steps]
    return ExceptionDetail(**_view(row), history=history)


async def list_exceptions(conn: Connection, principal: Principal, q: ExceptionFilter) -> ExceptionPage:
    after_at, after_id = after_keys(q.after)
    rows = await conn.fetch(
        f"""select e.* from {_SCOPED}
           where ($1::text is null or e.status = $1) and ($2::text is null or e.queue = $2)
             and ($3::text is null or e.code = $3) and ($4::text is null or e.subject_id = $4)
             and ($5::text is null or e.group_key = $5)
             and ($6::timestamptz is null or (e.created_at, e.id) > ($6, $7::uuid))
             and {scope_clause(9)}
           order by e.created_at, e.id limit $8""",
        q.status,
        q.queue,
        q.code,
        q.subject_id,
        q.group_key,
        after_at,
        after_id,
        q.limit + 1,
        *principal.scope_args(),
    )
    page, next_cursor = page_of(rows, q.limit)
    return ExceptionPage(items=[ExceptionView(**_view(r)) for r in page], next_cursor=next_cursor)


class GroupFilter(BaseModel):
    """``?limit=&after=`` like every list, plus which members count."""

    limit: int = Field(default=50, ge=1, le=500, description="Groups per page")
    # Groups are ordered by key, and the key is the position: any key is a place to continue after.
    after: str | None = Field(
        default=None,
        min_length=1,
        max_length=GROUP_KEY_MAX,
        pattern=_TEXT,
        description="The next_cursor of the previous page (the last group key it listed)",
    )
    status: ExceptionStatus | None = Field(
        default=None, description="Which members count; absent: the unresolved ones (open or acknowledged)"
    )
    queue: Queue | None = Field(default=None, description="Only members in this queue")


async def list_exception_groups(conn: Connection, principal: Principal, q: GroupFilter) -> ExceptionGroupPage:
    rows = await conn.fetch(
        f"""select e.group_key,
                  array_agg(distinct e.code order by e.code) as codes,
                  (array_agg(e.queue order by e.sla_due_at, e.id))[1] as queue,
                  array_agg(distinct e.queue order by e.queue) as queues,
                  count(*) as members,
                  count(*) filter (where e.status <> 'resolved') as open,
                  count(*) filter (where e.status <> 'resolved' and 'retry' = any(e.actions)) as retryable,
                  count(*) filter (where e.status <> 'resolved' and e.sla_due_at < now()) as past_sla,
                  min(e.created_at) as oldest_created_at,
                  min(e.sla_due_at) filter (where e.status <> 'resolved') as next_sla_due_at
           from {_SCOPED}
           where case when $1::text is null then e.status <> 'resolved' else e.status = $1 end
             and ($2::text is null or e.queue = $2)
             and ($3::text is null or e.group_key collate "C" > $3)
             and {scope_clause(5)}
           group by e.group_key
           order by e.group_key collate "C"
           limit $4""",
        q.status,
        q.queue,
        q.after,
        q.limit + 1,
        *principal.scope_args(),
    )
    page = rows[: q.limit]
    next_cursor = page[-1]["group_key"] if len(rows) > q.limit else None
    items = [ExceptionGroup(**{**dict(r), "codes": list(r["codes"]), "queues": list(r["queues"])}) for r in page]
    return ExceptionGroupPage(items=items, next_cursor=next_cursor)
