"""Contract verbs: register a signed contract (governed activation), amend it (or preview the
amendment), take a CRM's whole contract state, and propagate every version."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from app.access import Principal
from app.canonical.contract import AmendmentIn, ContractIn
from app.canonical.intake import ContractState, IntakeResult
from app.db import Connection, Database
from app.errors import Conflict, FieldError, NotFound, ValidationFailed
from app.outbox import record_audit, record_event
from app.ownership import check_ownership
from app.tasks import TaskQueue
from process_apis.contracts import store
from process_apis.contracts.amending import Amender, AmendmentImpact, AmendmentOutcome
from process_apis.contracts.propagation import Propagator, propagation_job_id
from process_apis.contracts.rules import (
    Finding,
    GovernanceFacts,
    governance_findings,
    milestone_sum_finding,
    payload_hash,
)
from process_apis.contracts.terms import terms_of
from process_apis.contracts.views import amendment_applied, contract_registered
from process_apis.contracts.whole_state import derive_changes, unamendable_fields
from process_apis.exceptions.store import RaisedException, raise_exception, resolve_exceptions
from process_apis.ledger.engine import WORK_HOLD_CODES, reevaluate_contract
from system_apis.erp.port import ErpPort
from system_apis.psa.port import PsaPort
from system_apis.tax.port import TaxPort

__all__ = [
    "AmendmentImpact",
    "AmendmentOutcome",
    "ContractService",
    "RegisteredContract",
    "propagation_job_id",
]

# What a contract write touches, in field_ownership's words (app/ownership.py).
_CONTRACT_TERMS = [("contract", "terms"), ("customer", "name")]
_AMENDMENT = [("contract", "terms")]


@dataclass(frozen=True)
class RegisteredContract:
    id: uuid.UUID
    status: str
    version: int
    project_id: str | None
    created: bool
    exceptions: list[RaisedException] = field(default_factory=list)


class ContractService:
    def __init__(self, db: Database, erp: ErpPort, psa: PsaPort, tax: TaxPort, queue: TaskQueue) -> None:
        self.db, self.erp, self.psa, self.tax, self.queue = db, erp, psa, tax, queue
        self.propagator = Propagator(db, erp, psa)
        self.amender = Amender(db)

    # --- registration ------------------------------------------------------------------------

    async def register_contract(self, cmd: ContractIn, principal: Principal) -> RegisteredContract:
        async with self.db.connection() as conn:
            await check_ownership(conn, principal, _CONTRACT_TERMS)
            existing = await store.find_by_source(conn, cmd.source, cmd.external_id)
        digest = payload_hash(cmd.model_dump(mode="python"))
        if existing is not None:
            return await self._resend(existing, digest)

        findings = await self._governance(_facts(cmd))
        status = "blocked" if findings else "active"
        contract_id = uuid.uuid4()
        terms = terms_of(cmd)
        async with self.db.transaction() as conn:
            customer_id = await store.upsert_customer(
                conn, cmd.customer.external_id, cmd.customer.name, cmd.tax.customer_tax_id
            )
            if not await store.insert_contract(conn, contract_id, cmd, customer_id, status):
                raced = await store.find_by_source(conn, cmd.source, cmd.external_id)
                assert raced is not None  # the insert lost to it
                return await self._resend(raced, digest)
            await store.insert_version(
                conn,
                contract_id,
                terms,
                cmd.tax.jurisdiction,
                list(terms.rate_card),
                cmd.model_dump(mode="json"),
                digest,
                None,
            )
            raised = [await self._raise_finding(conn, contract_id, f) for f in findings]
            event = "contract.activated" if status == "active" else "contract.blocked"
            await record_event(
                conn, event, "contract", str(contract_id), {"version": 1, "codes": [f.code for f in findings]}
            )
            await record_audit(
                conn, principal.name, "contract.register", "contract", str(contract_id), {"status": status}
            )
        if status == "active":
            await self._enqueue_propagation(contract_id, 1)
        return RegisteredContract(contract_id, status, 1, None, True, raised)

    @staticmethod
    async def _raise_finding(conn: Connection, contract_id: uuid.UUID, finding: Finding) -> RaisedException:
        return await raise_exception(
            conn, finding.code, "contract", str(contract_id), finding.detail, ["retry"], group_key=finding.group_key
        )

    async def _resend(self, row: store.SourceRow, digest: str) -> RegisteredContract:
        if row.payload_hash != digest:
            raise Conflict(
                "this contract already exists with other terms; send an amendment instead",
                "AMENDMENT_REQUIRED",
                contract_id=str(row.id),
            )
        async with self.db.connection() as conn:
            open_rows = await store.open_exceptions(conn, row.id)
        return RegisteredContract(
            row.id,
            row.status,
            row.current_version,
            row.project_id,
            False,
            [RaisedException(id_, code, detail) for id_, code, detail in open_rows],
        )

    async def _governance(self, facts: GovernanceFacts) -> list[Finding]:
        # Backend look-ups happen before the transaction: no HTTP call holds a database lock.
        erp_customer = await self.erp.find_customer(facts.customer_external_id)
        jurisdiction = await self.tax.find_jurisdiction(facts.jurisdiction)
        async with self.db.connection() as conn:
            legal_entity = await store.find_legal_entity(conn, facts.legal_entity)
        findings = governance_findings(
            customer_external_id=facts.customer_external_id,
            erp_customer=erp_customer,
            legal_entity_code=facts.legal_entity,
            legal_entity=legal_entity,
            currency=facts.currency,
            jurisdiction=facts.jurisdiction,
            jurisdiction_known=jurisdiction is not None,
        )
        plan = milestone_sum_finding(facts.billing_model, facts.total_value, facts.milestone_amounts)
        return findings + ([plan] if plan else [])

    async def recheck_governance(self, contract_id: uuid.UUID, actor: str | None) -> str:
        """Re-run activation governance on a blocked contract; activate it when every check passes."""
        async with self.db.connection() as conn:
            facts = await store.governance_facts(conn, contract_id)
        if facts is None:
            raise NotFound(f"contract {contract_id} does not exist")
        if facts.status != "blocked":
            return facts.status
        findings = await self._governance(facts)
        codes = [f.code for f in findings]
        async with self.db.transaction() as conn:
            contract = await store.lock_contract(conn, contract_id)
            if contract["status"] != "blocked":
                return str(contract["status"])
            stale = await conn.fetch(
                """select code from exception where subject_type = 'contract' and subject_id = $1
                   and status <> 'resolved' and code <> all($2::text[]) and code <> 'PROPAGATION_FAILED'
                   and code <> all($3::text[])""",
                str(contract_id),
                codes,
                WORK_HOLD_CODES,  # the work's holds resolve when re-evaluation releases them
            )
            await resolve_exceptions(conn, "contract", str(contract_id), [r["code"] for r in stale])
            for f in findings:
                await self._raise_finding(conn, contract_id, f)
            if findings:
                return "blocked"
            await conn.execute("update contract set status = 'active', updated_at = now() where id = $1", contract_id)
            # Work held CONTRACT_BLOCKED is judged again now, in the activation's transaction.
            await reevaluate_contract(conn, contract_id)
            version = contract["current_version"]
            await record_event(
                conn, "contract.activated", "contract", str(contract_id), {"version": version, "codes": []}
            )
            await record_audit(conn, actor, "contract.activate", "contract", str(contract_id))
        await self._enqueue_propagation(contract_id, version)
        return "active"

    # --- amendments --------------------------------------------------------------------------

    async def amend_contract(self, contract_id: uuid.UUID, cmd: AmendmentIn, principal: Principal) -> AmendmentOutcome:
        """Apply version n+1; the same body for a version already applied is a resend (created False)."""
        outcome = await self.amender.amend(contract_id, cmd, principal)
        if outcome.created:
            await self._enqueue_propagation(contract_id, cmd.version)
        return outcome

    async def preview_amendment(
        self, contract_id: uuid.UUID, cmd: AmendmentIn, principal: Principal
    ) -> AmendmentImpact:
        """Everything the amendment would change, by applying it in a transaction that is rolled back."""
        return await self.amender.preview(contract_id, cmd, principal)

    # --- a CRM's whole state -----------------------------------------------------------------

    async def receive_contract_state(self, state: ContractState, principal: Principal) -> IntakeResult:
        """Version 1 registers; a later version amends with the changes derived from the state held."""
        cmd = state.contract
        async with self.db.connection() as conn:
            existing = await store.find_by_source(conn, cmd.source, cmd.external_id)
        if state.version == 1 or existing is None:
            if state.version != 1:
                raise Conflict(
                    f"psbridge does not know contract {cmd.source}/{cmd.external_id}: send its version 1 first",
                    "VERSION_CONFLICT",
                )
            registered = await self.register_contract(cmd, principal)
            return IntakeResult(registered.created, contract_registered(registered))
        if state.effective_date is None:
            raise ValidationFailed(
                "an amendment needs its effective date",
                code="INVALID_EFFECTIVE_DATE",
                errors=[
                    FieldError(["body", "effective_date"], "required for a version above 1", "INVALID_EFFECTIVE_DATE")
                ],
            )
        if state.version - 1 > existing.current_version:
            raise Conflict(
                f"the contract is at version {existing.current_version}: "
                f"the next amendment is version {existing.current_version + 1}",
                "VERSION_CONFLICT",
                current_version=existing.current_version,
            )
        async with self.db.connection() as conn:
            before = await store.terms_at(conn, existing.id, state.version - 1)
            identity = await store.identity(conn, existing.id)
        fixed = unamendable_fields(identity, before, cmd)
        if fixed:
            raise ValidationFailed(
                f"an amendment cannot change {', '.join(fixed)}",
                code="NOT_AMENDABLE",
                errors=[
                    FieldError(["body", *f.split(".")], "an amendment cannot change it", "NOT_AMENDABLE") for f in fixed
                ],
            )
        amendment = AmendmentIn(
            version=state.version,
            effective_date=state.effective_date,
            reason=state.reason,
            changes=derive_changes(before, terms_of(cmd, state.version, state.effective_date)),
        )
        outcome = await self.amend_contract(existing.id, amendment, principal)
        return IntakeResult(outcome.created, amendment_applied(outcome))

    # --- propagation -------------------------------------------------------------------------

    async def _enqueue_propagation(self, contract_id: uuid.UUID, version: int) -> None:
        await self.queue.enqueue(
            "propagate_contract", str(contract_id), str(version), job_id=propagation_job_id(contract_id, version)
        )

    async def propagate_contract(self, contract_id: uuid.UUID, version: int, final_attempt: bool) -> list[str]:
        return await self.propagator.propagate(contract_id, version, final_attempt)

    async def repropagate(self, contract_id: uuid.UUID, actor: str | None) -> None:
        """Put failed propagations back to pending and queue them again (``retry`` of PROPAGATION_FAILED)."""
        versions = await self.propagator.repropagate(contract_id)
        async with self.db.transaction() as conn:
            await record_audit(conn, actor, "contract.repropagate", "contract", str(contract_id))
        for version in versions:
            await self._enqueue_propagation(contract_id, version)


def _facts(cmd: ContractIn) -> GovernanceFacts:
    return GovernanceFacts(
        status="new",
        customer_external_id=cmd.customer.external_id,
        legal_entity=cmd.legal_entity,
        currency=cmd.currency,
        jurisdiction=cmd.tax.jurisdiction,
        billing_model=cmd.billing_model,
        total_value=cmd.total_value,
        milestone_amounts=[m.amount for m in cmd.milestones],
    )
