"""SQL for contracts: one statement per function, set-based inserts for plans."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from app.canonical.contract import ContractIn
from app.db import Connection, dumps
from app.observability import correlation_id
from process_apis.contracts.rules import GovernanceFacts, LegalEntityFacts
from process_apis.contracts.terms import Allowance, Identity, Milestone, Rate, Terms


@dataclass(frozen=True)
class VersionRow:
    version: int
    effective_date: date
    payload_hash: str


async def find_legal_entity(conn: Connection, code: str) -> LegalEntityFacts | None:
    row = await conn.fetchrow("select code, country, allowed_currencies from legal_entity where code = $1", code)
    return LegalEntityFacts(row["code"], row["country"], list(row["allowed_currencies"])) if row else None


@dataclass(frozen=True)
class SourceRow:
    id: uuid.UUID
    status: str
    current_version: int
    project_id: str | None
    payload_hash: str  # version 1's


async def find_by_source(conn: Connection, source: str, external_id: str) -> SourceRow | None:
    row = await conn.fetchrow(
        """select c.id, c.status, c.current_version, c.project_id, v.payload_hash
           from contract c join contract_version v on v.contract_id = c.id and v.version = 1
           where c.source = $1 and c.external_id = $2""",
        source,
        external_id,
    )
    return SourceRow(**dict(row)) if row else None


async def governance_facts(conn: Connection, contract_id: uuid.UUID) -> GovernanceFacts | None:
    """What activation governance checks, read from the contract's rows (its current version)."""
    row = await conn.fetchrow(
        """select c.status, cu.external_id, c.legal_entity, c.currency, v.tax_jurisdiction, c.billing_model,
                  v.total_value,
                  array(select m.amount from milestone m
                        where m.contract_id = c.id and m.version = c.current_version) as amounts
           from contract c join customer cu on cu.id = c.customer_id
           join contract_version v on v.contract_id = c.id and v.version = c.current_version
           where c.id = $1""",
        contract_id,
    )
    if row is None:
        return None
    return GovernanceFacts(
        status=row["status"],
        customer_external_id=row["external_id"],
        legal_entity=row["legal_entity"],
        currency=row["currency"],
        jurisdiction=row["tax_jurisdiction"],
        billing_model=row["billing_model"],
        total_value=row["total_value"],
        milestone_amounts=list(row["amounts"]),
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
    terms: Terms,
    tax_jurisdiction: str,
    rates: list[Rate],
    payload: dict[str, Any],
    payload_hash: str,
    reason: str | None,
) -> None:
    """A version row with its rates, allowances, milestone plan and pending propagations (never rewritten)."""
    await conn.execute(
        """insert into contract_version (contract_id, version, effective_date, start_date, end_date, total_value,
                                         time_cap, tax_jurisdiction, customer_tax_id, reason, payload,
                                         payload_hash, correlation_id)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
        contract_id,
        terms.version,
        terms.effective_date,
        terms.start_date,
        terms.end_date,
        terms.total_value,
        terms.time_cap,
        tax_jurisdiction,
        terms.customer_tax_id,
        reason,
        payload,
        payload_hash,
        correlation_id(),
    )
    await conn.execute(
        """insert into rate_card_entry (contract_id, version, role, rate, effective_from, requested_from)
           select $1, $2, r.role, r.rate, r.effective_from, r.requested_from
           from unnest($3::text[], $4::numeric[], $5::date[], $6::date[])
                as r(role, rate, effective_from, requested_from)""",
        contract_id,
        terms.version,
        [r.role for r in rates],
        [r.rate for r in rates],
        [r.effective_from for r in rates],
        [r.requested_from for r in rates],
    )
    await conn.execute(
        """insert into expense_category (contract_id, version, category, cap)
           select $1, $2, e.category, e.cap from unnest($3::text[], $4::numeric[]) as e(category, cap)""",
        contract_id,
        terms.version,
        [a.category for a in terms.allowances],
        [a.cap for a in terms.allowances],
    )
    await insert_milestones(conn, contract_id, terms.version, terms.milestones)
    await conn.execute(
        """insert into propagation (contract_id, version, target)
           select $1, $2, t from unnest(array['psa', 'erp']) as t""",
        contract_id,
        terms.version,
    )


async def insert_milestones(conn: Connection, contract_id: uuid.UUID, version: int, plan: Sequence[Milestone]) -> None:
    # depends_on is a list per row; asyncpg cannot send ragged arrays, so each travels as JSON text.
    await conn.execute(
        """insert into milestone (contract_id, version, key, name, amount, due_date, depends_on)
           select $1, $2, m.key, m.name, m.amount, m.due_date,
                  array(select jsonb_array_elements_text(m.depends_on::jsonb))
           from unnest($3::text[], $4::text[], $5::numeric[], $6::date[], $7::text[])
                as m(key, name, amount, due_date, depends_on)""",
        contract_id,
        version,
        [m.key for m in plan],
        [m.name for m in plan],
        [m.amount for m in plan],
        [m.due_date for m in plan],
        [dumps(list(m.depends_on)) for m in plan],
    )


async def terms_at(conn: Connection, contract_id: uuid.UUID, version: int) -> Terms:
    """A contract's terms as of ``version``, read from the version rows (never from a stored payload,
    which an older, laxer schema may have accepted)."""
    row = await conn.fetchrow(
        """select v.version, v.effective_date, c.billing_model, c.currency, v.start_date, v.end_date,
                  v.total_value, v.time_cap, v.customer_tax_id
           from contract c join contract_version v on v.contract_id = c.id and v.version = $2
           where c.id = $1""",
        contract_id,
        version,
    )
    rates = await conn.fetch(
        # Equal starts in two versions: the newer version wins (docs/billing.md, "Edge rules").
        """select distinct on (role, effective_from) role, rate, effective_from, requested_from, version
           from rate_card_entry where contract_id = $1 and version <= $2
           order by role, effective_from, version desc""",
        contract_id,
        version,
    )
    allowances = await conn.fetch(
        "select category, cap from expense_category where contract_id = $1 and version = $2 order by category",
        contract_id,
        version,
    )
    milestones = await conn.fetch(
        """select key, name, amount, due_date, depends_on from milestone where contract_id = $1 and version = $2
           order by due_date nulls last, key""",
        contract_id,
        version,
    )
    return Terms(
        version=row["version"],
        effective_date=row["effective_date"],
        billing_model=row["billing_model"],
        currency=row["currency"],
        start_date=row["start_date"],
        end_date=row["end_date"],
        total_value=row["total_value"],
        time_cap=row["time_cap"],
        customer_tax_id=row["customer_tax_id"],
        rate_card=tuple(
            Rate(r["role"], r["rate"], r["effective_from"], r["requested_from"], r["version"]) for r in rates
        ),
        allowances=tuple(Allowance(a["category"], a["cap"]) for a in allowances),
        milestones=tuple(
            Milestone(m["key"], m["name"], m["amount"], m["due_date"], tuple(m["depends_on"])) for m in milestones
        ),
    )


async def accepted_milestones(conn: Connection, contract_id: uuid.UUID) -> set[str]:
    rows = await conn.fetch("select key from milestone_acceptance where contract_id = $1", contract_id)
    return {r["key"] for r in rows}


async def find_version(conn: Connection, contract_id: uuid.UUID, version: int) -> VersionRow | None:
    row = await conn.fetchrow(
        "select version, effective_date, payload_hash from contract_version where contract_id = $1 and version = $2",
        contract_id,
        version,
    )
    return VersionRow(row["version"], row["effective_date"], row["payload_hash"]) if row else None


async def identity(conn: Connection, contract_id: uuid.UUID) -> Identity:
    row = await conn.fetchrow(
        """select c.number, c.legal_entity, cu.external_id, v.tax_jurisdiction
           from contract c join customer cu on cu.id = c.customer_id
           join contract_version v on v.contract_id = c.id and v.version = 1
           where c.id = $1""",
        contract_id,
    )
    return Identity(row["number"], row["legal_entity"], row["external_id"], row["tax_jurisdiction"])


async def set_current_version(conn: Connection, contract_id: uuid.UUID, version: int) -> None:
    await conn.execute(
        "update contract set current_version = $2, updated_at = now() where id = $1", contract_id, version
    )


async def lock_contract(conn: Connection, contract_id: uuid.UUID) -> Any:
    return await conn.fetchrow("select * from contract where id = $1 for update", contract_id)


async def open_exceptions(conn: Connection, contract_id: uuid.UUID) -> list[tuple[uuid.UUID, str, str]]:
    rows = await conn.fetch(
        """select id, code, detail from exception
           where subject_type = 'contract' and subject_id = $1 and status <> 'resolved' order by created_at""",
        str(contract_id),
    )
    return [(r["id"], r["code"], r["detail"]) for r in rows]
