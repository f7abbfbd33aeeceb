"""Exception work-item read models."""

from __future__ import annotations

import uuid
from typing import Any

from app.db import Connection
from app.errors import NotFound
from app.pagination import after_keys, page_of


def _item(r: Any) -> dict[str, Any]:
    return {
        "id": str(r["id"]),
        "code": r["code"],
        "queue": r["queue"],
        "status": r["status"],
        "subject": {"type": r["subject_type"], "id": r["subject_id"]},
        "group_key": r["group_key"],
        "count": r["count"],
        "owner": r["owner"],
        "sla_due_at": r["sla_due_at"].isoformat(),
        "detail": r["detail"],
        "actions": list(r["actions"]),
        "note": r["note"],
        "correlation_id": r["correlation_id"],
        "created_at": r["created_at"].isoformat(),
        "updated_at": r["updated_at"].isoformat(),
    }


async def get_exception(conn: Connection, exception_id: uuid.UUID) -> dict[str, Any]:
    row = await conn.fetchrow("select * from exception where id = $1", exception_id)
    if row is None:
        raise NotFound(f"exception {exception_id} does not exist")
    return _item(row)


async def list_exceptions(
    conn: Connection, filters: dict[str, str | None], limit: int, after: str | None
) -> dict[str, Any]:
    after_at, after_id = after_keys(after)
    rows = await conn.fetch(
        """select * from exception
           where ($1::text is null or status = $1) and ($2::text is null or queue = $2)
             and ($3::text is null or code = $3) and ($4::text is null or subject_id = $4)
             and ($5::text is null or group_key = $5)
             and ($6::timestamptz is null or (created_at, id) > ($6, $7::uuid))
           order by created_at, id limit $8""",
        filters.get("status"),
        filters.get("queue"),
        filters.get("code"),
        filters.get("subject_id"),
        filters.get("group_key"),
        after_at,
        after_id,
        limit + 1,
    )
    page, next_cursor = page_of(rows, limit)
    return {"items": [_item(r) for r in page], "next_cursor": next_cursor}
