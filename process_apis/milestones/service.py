"""Accepting a milestone creates exactly one billable transaction dated on the acceptance date."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from app.access import Principal, scope_clause
from app.db import Database
from app.errors import Conflict, NotFound
from app.money import quantize
from app.observability import correlation_id
from app.outbox import record_audit, record_event
from process_apis.ledger.invoicing import milestone_transaction, record_milestone
from process_apis.milestones.commands import AcceptanceIn
from process_apis.milestones.rules import VersionSpan, acceptance_date, check_acceptance, version_in_force

__all__ = ["AcceptedMilestone", "MilestoneService"]


@dataclass(frozen=True)
class AcceptedMilestone:
    contract_id: uuid.UUID
    key: str
    name: str
    amount: Decimal
    currency: str
    due_date: date | None
    depends_on: list[str]
    accepted_at: datetime
    accepted_on: date
    accepted_by: str | None
    version: int
    transaction_id: uuid.UUID
    transaction_amount: Decimal
    transaction_status: str


class MilestoneService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def accept_milestone(
        self, contract_id: uuid.UUID, key: str, cmd: AcceptanceIn, principal: Principal
    ) -> AcceptedMilestone:
        on = acceptance_date(cmd.accepted_at)
        actor = principal.name
        async with self.db.transaction() as conn:
            # The row lock serialises acceptances per contract: prerequisites are read consistently.
            contract = await conn.fetchrow(
                f"""select c.id, c.status, c.currency, c.current_version from contract c
                    join customer cu on cu.id = c.customer_id
                    where c.id = $1 and {scope_clause(2)} for update of c""",
                contract_id,
                *principal.scope_args(),
            )
            if contract is None:
                raise NotFound(f"contract {contract_id} does not exist")
            existing = await conn.fetchrow(
                "select * from milestone_acceptance where contract_id = $1 and key = $2", contract_id, key
            )
            if existing is not None and contract["status"] != "blocked":
                if existing["accepted_at"] != cmd.accepted_at:
                    raise Conflict(
                        f"milestone {key} was already accepted at {existing['accepted_at'].isoformat()}",
                        "ALREADY_ACCEPTED",
                    )
                return await self._result(conn, contract_id, key, existing)
            versions = await conn.fetch(
                "select version, effective_date, start_date from contract_version where contract_id = $1",
                contract_id,
            )
            version = version_in_force([VersionSpan(v["version"], v["effective_date"]) for v in versions], on)
            plan = {
                m["key"]: m
                for m in await conn.fetch(
                    "select * from milestone where contract_id = $1 and version = $2", contract_id, version
                )
            }
            known = await conn.fetchval(
                "select exists(select 1 from milestone where contract_id = $1 and key = $2)", contract_id, key
            )
            if not known:
                raise NotFound(f"contract {contract_id} has no milestone {key}", "UNKNOWN_MILESTONE")
            accepted = {
                r["key"]: r["accepted_on"]
                for r in await conn.fetch(
                    "select key, accepted_on from milestone_acceptance where contract_id = $1", contract_id
                )
            }
            check_acceptance(
                key=key,
                on=on,
                contract_status=contract["status"],
                start_date=next(v["start_date"] for v in versions if v["version"] == 1),
                in_force_keys=set(plan),
                depends_on=list(plan[key]["depends_on"]) if key in plan else [],
                accepted_on=accepted,
            )
            amount = quantize(plan[key]["amount"], contract["currency"])
            transaction_id = await record_milestone(conn, contract_id, key, version, on, amount, contract["currency"])
            row = await conn.fetchrow(
                """insert into milestone_acceptance (contract_id, key, accepted_at, accepted_on, accepted_by,
                       evidence_uri, version, amount, transaction_id, correlation_id)
                   values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) returning *""",
                contract_id,
                key,
                cmd.accepted_at,
                on,
                cmd.accepted_by,
                cmd.evidence_uri,
                version,
                amount,
                transaction_id,
                correlation_id(),
            )
            await record_event(
                conn,
                "milestone.accepted",
                "contract",
                str(contract_id),
                {"key": key, "amount": amount, "accepted_on": on.isoformat(), "transaction_id": str(transaction_id)},
            )
            await record_audit(conn, actor, "milestone.accept", "contract", str(contract_id), {"key": key})
            return await self._result(conn, contract_id, key, row)

    @staticmethod
    async def _result(conn: Any, contract_id: uuid.UUID, key: str, acceptance: Any) -> AcceptedMilestone:
        tx = await milestone_transaction(conn, acceptance["transaction_id"])
        return AcceptedMilestone(
            contract_id=contract_id,
            key=key,
            name=tx.name,
            amount=quantize(acceptance["amount"], tx.currency),
            currency=tx.currency,
            due_date=tx.due_date,
            depends_on=tx.depends_on,
            accepted_at=acceptance["accepted_at"],
            accepted_on=acceptance["accepted_on"],
            accepted_by=acceptance["accepted_by"],
            version=acceptance["version"],
            transaction_id=tx.id,
            transaction_amount=quantize(tx.amount, tx.currency),
            transaction_status=tx.status,
        )
