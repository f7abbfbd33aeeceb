"""Exception work-item read models, filtered by the principal (a project manager sees its contracts' items)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field

from app.access import Principal, scope_clause
from app.db import Connection
from app.errors import NotFound
from app.pagination import PageQuery, after_keys, page_of
from process_apis.exceptions.views import ExceptionPage, ExceptionView, Subject

__all__ = ["ExceptionFilter", "get_exception", "list_exceptions"]

_TEXT = r"^[^\x00-\x1f\x7f]+$"
_SCOPED = "exception e left join contract c on c.id = e.contract_id left join customer cu on cu.id = c.customer_id"


class ExceptionFilter(PageQuery):
    status: Literal["open", "acknowledged", "resolved"] | None = None
    queue: Literal["integration", "delivery", "finance"] | None = None
    code: str | None = Field(default=None, min_length=1, max_length=64, pattern=_TEXT)
    subject_id: str | None = Field(default=None, min_length=1, max_length=200, pattern=_TEXT)
    group_key: str | None = Field(default=None, min_length=1, max_length=200, pattern=_TEXT)


def _view(r: Any) -> ExceptionView:
    return ExceptionView(
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


async def get_exception(conn: Connection, exception_id: uuid.UUID, principal: Principal) -> ExceptionView:
    row = await conn.fetchrow(
        f"select e.* from {_SCOPED} where e.id = $1 and {scope_clause(2)}", exception_id, *principal.scope_args()
    )
    if row is None:
        raise NotFound(f"exception {exception_id} does not exist")
    return _view(row)


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
    return ExceptionPage(items=[_view(r) for r in page], next_cursor=next_cursor)
