"""Amending a contract: version n+1 under the contract's row lock, or its dry run.

A dry run is the real amendment undone: the same checks, the same version rows, the same
re-evaluation of unbilled work inside the transaction, then ``_RolledBack`` carries the impact
out and the transaction rolls back, so the preview cannot drift from what an amendment does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from app.access import Principal, scope_clause
from app.canonical.contract import AmendmentIn
from app.db import Connection, Database
from app.errors import Conflict, FieldError, NotFound, ValidationFailed
from app.outbox import record_audit, record_event
from app.ownership import check_ownership
from process_apis.contracts import propagation_store, store
from process_apis.contracts.amendment_rules import (
    MilestoneImpact,
    amended_terms,
    amendment_violations,
    milestone_impact,
    new_rates,
)
from process_apis.contracts.propagation_store import PropagationRow
from process_apis.contracts.rules import payload_hash
from process_apis.ledger.engine import Reevaluation, reevaluate_contract
from process_apis.ledger.store import Balances, contract_balances

__all__ = ["AmendmentImpact", "AmendmentOutcome", "Amender"]

# What an amendment writes, in field_ownership's words (app/ownership.py).
_AMENDMENT = [("contract", "terms")]


@dataclass(frozen=True)
class AmendmentOutcome:
    contract_id: uuid.UUID
    version: int
    status: str
    effective_date: date
    created: bool
    propagation: list[PropagationRow]


@dataclass(frozen=True)
class AmendmentImpact:
    """What an amendment would do, computed by doing it and rolling it back."""

    contract_id: uuid.UUID
    version: int
    effective_date: date
    currency: str
    total_value: tuple[Decimal | None, Decimal | None]
    milestones: MilestoneImpact
    reevaluation: Reevaluation
    balances: tuple[Balances, Balances]


class _RolledBack(Exception):
    def __init__(self, impact: AmendmentImpact) -> None:
        self.impact = impact


class Amender:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def amend(self, contract_id: uuid.UUID, cmd: AmendmentIn, principal: Principal) -> AmendmentOutcome:
        """Apply version n+1; the same body for a version already applied is a resend (created False)."""
        return await self._amend(contract_id, cmd, principal, dry_run=False)

    async def preview(self, contract_id: uuid.UUID, cmd: AmendmentIn, principal: Principal) -> AmendmentImpact:
        """Everything the amendment would change, by applying it in a transaction that is rolled back."""
        try:
            await self._amend(contract_id, cmd, principal, dry_run=True)
        except _RolledBack as rolled_back:
            return rolled_back.impact
        raise AssertionError("a dry run always rolls back")  # pragma: no cover

    async def _amend(
        self, contract_id: uuid.UUID, cmd: AmendmentIn, principal: Principal, dry_run: bool
    ) -> AmendmentOutcome:
        digest = payload_hash(cmd.model_dump(mode="python", exclude_unset=True))
        async with self.db.connection() as conn:
            await check_ownership(conn, principal, _AMENDMENT)
        async with self.db.transaction() as conn:
            # The row lock serialises amendments of one contract: of concurrent version-n+1 bodies one wins.
            contract = await conn.fetchrow(
                f"""select c.id, c.status, c.current_version from contract c
                    join customer cu on cu.id = c.customer_id
                    where c.id = $1 and {scope_clause(2)} for update of c""",
                contract_id,
                *principal.scope_args(),
            )
            if contract is None:
                raise NotFound(f"contract {contract_id} does not exist")
            current = contract["current_version"]
            applied = await store.find_version(conn, contract_id, cmd.version)
            if applied is not None:
                if applied.payload_hash != digest or dry_run:
                    raise Conflict(
                        f"version {cmd.version} is already applied"
                        + (" with other changes" if applied.payload_hash != digest else ""),
                        "VERSION_CONFLICT",
                        current_version=current,
                    )
                return AmendmentOutcome(
                    contract_id,
                    cmd.version,
                    contract["status"],
                    applied.effective_date,
                    False,
                    await propagation_store.propagation_of(conn, contract_id, cmd.version),
                )
            if contract["status"] == "blocked":
                raise Conflict("a blocked contract cannot be amended: resolve its exceptions first", "CONTRACT_BLOCKED")
            if cmd.version != current + 1:
                raise Conflict(
                    f"the contract is at version {current}: the next amendment is version {current + 1}",
                    "VERSION_CONFLICT",
                    current_version=current,
                )
            impact = await self._apply(conn, contract_id, cmd, digest, principal)
            if dry_run:
                raise _RolledBack(impact)
            return AmendmentOutcome(
                contract_id,
                cmd.version,
                contract["status"],
                cmd.effective_date,
                True,
                await propagation_store.propagation_of(conn, contract_id, cmd.version),
            )

    async def _apply(
        self, conn: Connection, contract_id: uuid.UUID, cmd: AmendmentIn, digest: str, principal: Principal
    ) -> AmendmentImpact:
        before = await store.terms_at(conn, contract_id, cmd.version - 1)
        violations = amendment_violations(before, cmd, await store.accepted_milestones(conn, contract_id))
        if violations:
            raise ValidationFailed(
                f"the amendment cannot apply: {'; '.join(v.msg for v in violations)}",
                code=violations[0].code,
                errors=[FieldError(["body", *v.loc], v.msg, v.code) for v in violations],
            )
        after = amended_terms(before, cmd)
        identity = await store.identity(conn, contract_id)
        balances_before = await contract_balances(conn, contract_id)
        await store.insert_version(
            conn,
            contract_id,
            after,
            identity.tax_jurisdiction,
            new_rates(cmd),
            cmd.model_dump(mode="json", exclude_unset=True),
            digest,
            cmd.reason,
        )
        await store.set_current_version(conn, contract_id, cmd.version)
        reevaluation = await reevaluate_contract(conn, contract_id)
        balances_after = await contract_balances(conn, contract_id)
        impact = AmendmentImpact(
            contract_id=contract_id,
            version=cmd.version,
            effective_date=cmd.effective_date,
            currency=before.currency,
            total_value=(before.total_value, after.total_value),
            milestones=milestone_impact(before, after),
            reevaluation=reevaluation,
            balances=(balances_before, balances_after),
        )
        await record_event(
            conn,
            "contract.amended",
            "contract",
            str(contract_id),
            {
                "version": cmd.version,
                "effective_date": cmd.effective_date.isoformat(),
                "reason": cmd.reason,
                "milestones": {
                    "added": impact.milestones.added,
                    "changed": impact.milestones.changed,
                    "removed": impact.milestones.removed,
                },
            },
        )
        await record_audit(
            conn, principal.name, "contract.amend", "contract", str(contract_id), {"version": cmd.version}
        )
        return impact
