"""SQL for contracts: one statement per function, set-based inserts for plans."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from app.canonical.contract import ContractIn
from app.db import Connection, dumps
from app.observability import correlation_id
from process_apis.contracts.rules import LegalEntityFacts


async def find_legal_entity(conn: Connection, code: str) -> LegalEntityFacts | None:
    row = await conn.fetchrow("select code, country, allowed_currencies from legal_entity where code = $1", code)
    return LegalEntityFacts(row["code"], row["country"], list(row["allowed_currencies"])) if row else None


async def find_by_source(conn: Connection, source: str, external_id: str) -> Any:
    return await conn.fetchrow(
        """select c.id, c.status, c.current_version, c.project_id, v.payload_hash
           from contract c join contract_version v on v.contract_id = c.id and v.version = 1
           where c.source = $1 and c.external_id = $2""",
        source,
        external_id,
    )


async def upsert_customer(conn: Connection, external_id: str, name: str, tax_id: str | None) -> uuid.UUID:
    customer_id: uuid.UUID = await conn.fetchval(
        """insert into customer (id, external_id, name, tax_id, correlation_id) values ($1, $2, $3, $4, $5)
           on conflict (external_id) do update set name = excluded.name, updated_at = now()
           returning id""",
        uuid.uuid4(),
        external_id,
        name,
        tax_id,
        correlation_id(),
    )
    return customer_id


async def insert_contract(
    conn: Connection, contract_id: uuid.UUID, cmd: ContractIn, customer_id: uuid.UUID, status: str
) -> bool:
    """False when a concurrent request stored the same (source, external_id) first."""
    inserted = await conn.fetchval(
        """insert into contract (id, source, external_id, number, customer_id, legal_entity, currency,
                                 billing_model, status, document, signed_at, correlation_id)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
           on conflict (source, external_id) do nothing
           returning true""",
        contract_id,
        cmd.source,
        cmd.external_id,
        cmd.number,
        customer_id,
        cmd.legal_entity,
        cmd.currency,
        cmd.billing_model,
        status,
        cmd.document.model_dump() if cmd.document else None,
        cmd.signed_at,
        correlation_id(),
    )
    return bool(inserted)


async def insert_version(
    conn: Connection,
    contract_id: uuid.UUID,
    version: int,
    effective_date: date,
    cmd: ContractIn,
    payload: dict[str, Any],
    payload_hash: str,
    reason: str | None,
) -> None:
    await conn.execute(
        """insert into contract_version (contract_id, version, effective_date, start_date, end_date, total_value,
                                         time_cap, tax_jurisdiction, customer_tax_id, reason, payload,
                                         payload_hash, correlation_id)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
        contract_id,
        version,
        effective_date,
        cmd.start_date,
        cmd.end_date,
        cmd.total_value,
        cmd.time_cap,
        cmd.tax.jurisdiction,
        cmd.tax.customer_tax_id,
        reason,
        payload,
        payload_hash,
        correlation_id(),
    )
    await conn.execute(
        """insert into rate_card_entry (contract_id, version, role, rate, effective_from)
           select $1, $2, r.role, r.rate, r.effective_from
           from unnest($3::text[], $4::numeric[], $5::date[]) as r(role, rate, effective_from)""",
        contract_id,
        version,
        [r.role for r in cmd.rate_card],
        [r.rate for r in cmd.rate_card],
        [r.effective_from for r in cmd.rate_card],
    )
    await conn.execute(
        """insert into expense_category (contract_id, version, category, cap)
           select $1, $2, e.category, e.cap from unnest($3::text[], $4::numeric[]) as e(category, cap)""",
        contract_id,
        version,
        [e.category for e in cmd.reimbursable_expenses],
        [e.cap for e in cmd.reimbursable_expenses],
    )
    await insert_milestones(
        conn,
        contract_id,
        version,
        [(m.key, m.name, m.amount, m.due_date, m.depends_on) for m in cmd.milestones],
    )
    await conn.execute(
        """insert into propagation (contract_id, version, target)
           select $1, $2, t from unnest(array['psa', 'erp']) as t""",
        contract_id,
        version,
    )


async def insert_milestones(
    conn: Connection,
    contract_id: uuid.UUID,
    version: int,
    plan: list[tuple[str, str, Decimal, date | None, list[str]]],
) -> None:
    # depends_on is a list per row; asyncpg cannot send ragged arrays, so each travels as JSON text.
    await conn.execute(
        """insert into milestone (contract_id, version, key, name, amount, due_date, depends_on)
           select $1, $2, m.key, m.name, m.amount, m.due_date,
                  array(select jsonb_array_elements_text(m.depends_on::jsonb))
           from unnest($3::text[], $4::text[], $5::numeric[], $6::date[], $7::text[])
                as m(key, name, amount, due_date, depends_on)""",
        contract_id,
        version,
        [p[0] for p in plan],
        [p[1] for p in plan],
        [p[2] for p in plan],
        [p[3] for p in plan],
        [dumps(p[4]) for p in plan],
    )


async def lock_contract(conn: Connection, contract_id: uuid.UUID) -> Any:
    return await conn.fetchrow("select * from contract where id = $1 for update", contract_id)


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
