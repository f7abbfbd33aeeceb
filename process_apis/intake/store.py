"""SQL of the intake: inbound events as received, and the MAPPING_FAILED work items that hold them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from app.canonical.intake import InboundPayload
from app.db import Connection
from app.observability import correlation_id

__all__ = [
    "InboundEvent",
    "failed_events_superseded_by",
    "find_contract_id",
    "find_event",
    "insert_event",
    "record_outcome",
]


@dataclass(frozen=True)
class InboundEvent:
    id: uuid.UUID
    system: str
    vendor: str
    subject: str | None
    body: bytes
    status: str


async def insert_event(
    conn: Connection,
    payload: InboundPayload,
    status: str,
    errors: list[dict[str, Any]],
    contract_id: uuid.UUID | None,
    version: int | None,
    received_by: str,
) -> None:
    await conn.execute(
        """insert into inbound_event (id, system, vendor, subject, body, status, errors, contract_id, version,
                                      received_by, correlation_id)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        payload.id,
        payload.system,
        payload.vendor,
        payload.subject,
        payload.body,
        status,
        errors,
        contract_id,
        version,
        received_by,
        correlation_id(),
    )


async def find_event(conn: Connection, event_id: uuid.UUID) -> InboundEvent | None:
    row = await conn.fetchrow(
        "select id, system, vendor, subject, body, status from inbound_event where id = $1", event_id
    )
    if row is None:
        return None
    return InboundEvent(row["id"], row["system"], row["vendor"], row["subject"], bytes(row["body"]), row["status"])


async def record_outcome(
    conn: Connection,
    event_id: uuid.UUID,
    status: str,
    errors: list[dict[str, Any]],
    subject: str | None,
    contract_id: uuid.UUID | None,
    version: int | None,
) -> None:
    """What became of an event (after the contracts process answered, or after a replay)."""
    await conn.execute(
        """update inbound_event
           set status = $2, errors = $3, subject = coalesce($4, subject), contract_id = coalesce($5, contract_id),
               version = coalesce($6, version), updated_at = now()
           where id = $1""",
        event_id,
        status,
        errors,
        subject,
        contract_id,
        version,
    )


async def find_contract_id(conn: Connection, source: str, external_id: str) -> uuid.UUID | None:
    contract_id: uuid.UUID | None = await conn.fetchval(
        "select id from contract where source = $1 and external_id = $2", source, external_id
    )
    return contract_id


async def failed_events_superseded_by(conn: Connection, event_id: uuid.UUID) -> list[uuid.UUID]:
    """This event and the earlier ones of the same vendor record whose MAPPING_FAILED item is still open,
    but for those of a later version than this one's (a version 2 that came too early is not superseded
    by version 1). An event whose version could not be read is superseded by any later one."""
    rows = await conn.fetch(
        """select e.id
           from inbound_event this
           join inbound_event e on e.id = this.id
                                or (e.system = this.system and e.vendor = this.vendor and e.subject = this.subject
                                    and e.received_at <= this.received_at
                                    and (e.version is null or e.version <= this.version))
           where this.id = $1
             and exists (select from exception x
                         where x.subject_type = 'inbound_event' and x.subject_id = e.id::text
                           and x.code = 'MAPPING_FAILED' and x.status <> 'resolved')
           order by e.received_at, e.id""",
        event_id,
    )
    return [r["id"] for r in rows]
