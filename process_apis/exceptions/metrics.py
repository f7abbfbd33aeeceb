"""The read model behind ``psbridge_exceptions_open``: exceptions not resolved, per queue and code."""

from __future__ import annotations

from app.db import Connection
from process_apis.exceptions.store import QUEUES

__all__ = ["count_open_exceptions"]


async def count_open_exceptions(conn: Connection) -> dict[tuple[str, str], int]:
    """``(queue, code) -> open`` for every code psbridge raises (0 when none is open), plus any other open.

    Known codes are always reported, so a series that drops to zero reads 0 instead of vanishing.
    """
    counts = {(queue, code): 0 for code, queue in QUEUES.items()}
    rows = await conn.fetch(
        "select queue, code, count(*) as open from exception where status <> 'resolved' group by queue, code"
    )
    counts.update({(r["queue"], r["code"]): int(r["open"]) for r in rows})
    return counts
