"""SQL for propagation: where each contract version stands in the PSA and the ERP."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from app.db import Connection

__all__ = [
    "PropagationRow",
    "confirm_propagations",
    "current_version",
    "failed_propagations",
    "mark_propagation",
    "pending_propagations",
    "propagation_of",
    "set_project",
]


@dataclass(frozen=True)
class PropagationRow:
    target: str
    status: str
    attempts: int
    last_error: str | None
    confirmed_at: datetime | None
    confirmed_version: int | None


async def propagation_of(conn: Connection, contract_id: uuid.UUID, version: int) -> list[PropagationRow]:
    rows = await conn.fetch(
        """select target, status, attempts, last_error, confirmed_at, confirmed_version from propagation
           where contract_id = $1 and version = $2 order by target""",
        contract_id,
        version,
    )
    return [PropagationRow(**dict(r)) for r in rows]


async def set_project(conn: Connection, contract_id: uuid.UUID, project_id: str) -> None:
    await conn.execute("update contract set project_id = $2, updated_at = now() where id = $1", contract_id, project_id)
    await conn.execute(
        """insert into external_ref (canonical_type, canonical_id, system, external_id)
           values ('contract', $1, 'psa', $2)
           on conflict (canonical_type, canonical_id, system) do update set external_id = excluded.external_id""",
        contract_id,
        project_id,
    )


async def mark_propagation(
    conn: Connection, contract_id: uuid.UUID, version: int, target: str, status: str, error: str | None
) -> None:
    await conn.execute(
        """update propagation
           set status = $4, attempts = attempts + 1, last_error = $5, updated_at = now(),
               confirmed_at = case when $4 = 'confirmed' then now() else confirmed_at end
           where contract_id = $1 and version = $2 and target = $3""",
        contract_id,
        version,
        target,
        status,
        error,
    )


async def pending_propagations(conn: Connection, contract_id: uuid.UUID, version: int) -> list[str]:
    rows = await conn.fetch(
        # The PSA first: delivery sees the project before billing sees the schedule.
        """select target from propagation where contract_id = $1 and version = $2 and status <> 'confirmed'
           order by target = 'psa' desc, target""",
        contract_id,
        version,
    )
    return [r["target"] for r in rows]


async def confirm_propagations(
    conn: Connection, contract_id: uuid.UUID, target: str, pushed: int, attempted: int
) -> list[int]:
    """The target now holds version ``pushed``: it and every earlier version not yet confirmed are.

    Returns the versions this confirmed; the try counts against version ``attempted`` (the job's).
    """
    rows = await conn.fetch(
        """update propagation
           set status = 'confirmed', confirmed_version = $3, last_error = null, updated_at = now(),
               confirmed_at = now(), attempts = attempts + (version = $4)::int
           where contract_id = $1 and target = $2 and version <= $3 and status <> 'confirmed'
           returning version""",
        contract_id,
        target,
        pushed,
        attempted,
    )
    return sorted(r["version"] for r in rows)


async def current_version(conn: Connection, contract_id: uuid.UUID) -> int:
    version: int = await conn.fetchval("select current_version from contract where id = $1", contract_id)
    return version


async def failed_propagations(conn: Connection, contract_id: uuid.UUID) -> int:
    failed: int = await conn.fetchval(
        "select count(*) from propagation where contract_id = $1 and status = 'failed'", contract_id
    )
    return failed
