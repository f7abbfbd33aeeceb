"""Exception kinds (``exception_kind``): which queue each code lands in and the SLA it gets, as data.

An interval keeps its days and its time apart ('2 days' is not '48 hours'), so the parts are read
back as stored and the SLA reads the way the operator wrote it (zero parts left out).
"""

from __future__ import annotations

from typing import Any

from app.db import Connection
from process_apis.exceptions.rules import Sla, format_sla
from process_apis.exceptions.views import ExceptionKind

__all__ = ["list_exception_kinds", "update_exception_kind"]

_COLUMNS = """code, queue, description, updated_at, extract(epoch from sla)::bigint as sla_seconds,
              extract(day from sla)::int as days, extract(hour from sla)::int as hours,
              extract(minute from sla)::int as minutes, floor(extract(second from sla))::int as seconds"""


def _kind(r: Any) -> ExceptionKind:
    return ExceptionKind(
        code=r["code"],
        queue=r["queue"],
        sla=format_sla(Sla(r["days"], r["hours"], r["minutes"], r["seconds"])),
        sla_seconds=r["sla_seconds"],
        description=r["description"],
        updated_at=r["updated_at"],
    )


async def list_exception_kinds(conn: Connection) -> list[ExceptionKind]:
    return [_kind(r) for r in await conn.fetch(f"select {_COLUMNS} from exception_kind order by code")]


async def update_exception_kind(
    conn: Connection, code: str, queue: str, sla: Sla, description: str | None
) -> ExceptionKind | None:
    """None when psbridge raises no such code: kinds are the codes it raises, not created by hand."""
    row = await conn.fetchrow(
        f"""update exception_kind
               set queue = $2, sla = make_interval(days => $3, hours => $4, mins => $5, secs => $6::int),
                   description = coalesce($7, description), updated_at = now()
             where code = $1
         returning {_COLUMNS}""",
        code,
        queue,
        sla.days,
        sla.hours,
        sla.minutes,
        sla.seconds,
        description,
    )
    return _kind(row) if row else None
