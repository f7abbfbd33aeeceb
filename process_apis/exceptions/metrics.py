"""The read models behind ``psbridge_exceptions_open`` and ``psbridge_exceptions_past_sla``.

Both are read from PostgreSQL at scrape time, so every API process reports the same numbers.
"""

from __future__ import annotations

from app.db import Connection

__all__ = ["count_open_exceptions", "count_past_sla"]


async def count_open_exceptions(conn: Connection) -> dict[tuple[str, str], int]:
    """``(queue, code) -> open`` for every kind (0 when none is open), plus any other open combination.

    Every kind is reported in the queue it has now, so a series that drops to zero reads 0 instead
    of vanishing; an exception opened before its kind moved is still counted where it sits.
    """
    rows = await conn.fetch(
        """select queue, code, sum(n)::int as open from (
               select queue, code, 0 as n from exception_kind
               union all
               select queue, code, 1 from exception where status <> 'resolved'
           ) counted group by queue, code"""
    )
    return {(r["queue"], r["code"]): r["open"] for r in rows}


async def count_past_sla(conn: Connection) -> dict[str, int]:
    """``queue -> unresolved exceptions (open or acknowledged) past their SLA due time``, 0 for a queue with none."""
    rows = await conn.fetch(
        """select q.queue, count(e.id)::int as past_sla
           from (select queue from exception_kind union select queue from exception where status <> 'resolved') q
           left join exception e on e.queue = q.queue and e.status <> 'resolved' and e.sla_due_at < now()
           group by q.queue"""
    )
    return {r["queue"]: r["past_sla"] for r in rows}
