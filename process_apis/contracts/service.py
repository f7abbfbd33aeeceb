"""Contract verbs: register a signed contract (governed activation) and propagate its plan."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from app.canonical import PlannedMilestone, ProjectPlan
from app.canonical.contract import ContractIn
from app.db import Database
from app.errors import BackendUnavailable, Conflict, NotFound
from app.outbox import record_audit, record_event
from app.tasks import TaskQueue
from process_apis.contracts import store
from process_apis.contracts.rules import Finding, governance_findings, milestone_sum_finding, payload_hash
from process_apis.exceptions.store import RaisedException, raise_exception, resolve_exceptions
from system_apis.erp.port import ErpPort
from system_apis.psa.port import PsaPort
from system_apis.tax.port import TaxPort

__all__ = ["ContractService", "RegisteredContract", "propagation_job_id"]


@dataclass(frozen=True)
class RegisteredContract:
    id: uuid.UUID
    status: str
    version: int
    project_id: str | None
    created: bool
    exceptions: list[RaisedException] = field(default_factory=list)


def propagation_job_id(contract_id: uuid.UUID | str, version: int) -> str:
    return f"propagate:{contract_id}:v{version}"


class ContractService:
    def __init__(self, db: Database, erp: ErpPort, psa: PsaPort, tax: TaxPort, queue: TaskQueue) -> None:
        self.db, self.erp, self.psa, self.tax, self.queue = db, erp, psa, tax, queue

    async def register_contract(self, cmd: ContractIn, actor: str | None) -> RegisteredContract:
        digest = payload_hash(cmd.model_dump(mode="python"))
        async with self.db.connection() as conn:
            existing = await store.find_by_source(conn, cmd.source, cmd.external_id)
        if existing is not None:
            return await self._resend(existing, digest)

        findings = await self._governance(cmd)
        status = "blocked" if findings else "active"
        contract_id = uuid.uuid4()
        async with self.db.transaction() as conn:
            customer_id = await store.upsert_customer(
                conn, cmd.customer.external_id, cmd.customer.name, cmd.tax.customer_tax_id
            )
            if not await store.insert_contract(conn, contract_id, cmd, customer_id, status):
                raced = await store.find_by_source(conn, cmd.source, cmd.external_id)
                return await self._resend(raced, digest)
            await store.insert_version(
                conn, contract_id, 1, cmd.start_date, cmd, cmd.model_dump(mode="json"), digest, None
            )
            raised = [
                await raise_exception(conn, f.code, "contract", str(contract_id), f.detail, ["retry"], group_key=f.code)
                for f in findings
            ]
            await record_event(
                conn,
                f"contract.{status}",
                "contract",
                str(contract_id),
                {"version": 1, "codes": [f.code for f in findings]},
            )
            await record_audit(conn, actor, "contract.register", "contract", str(contract_id), {"status": status})
        if status == "active":
            await self.queue.enqueue(
                "propagate_contract", str(contract_id), "1", job_id=propagation_job_id(contract_id, 1)
            )
        return RegisteredContract(
            contract_id,
            status,
            1,
            None,
            True,
            raised,
        )

    async def _resend(self, row: Any, digest: str) -> RegisteredContract:
        if row["payload_hash"] != digest:
            raise Conflict(
                "this contract already exists with other terms; send an amendment instead",
                "AMENDMENT_REQUIRED",
                contract_id=str(row["id"]),
            )
        async with self.db.connection() as conn:
            open_rows = await conn.fetch(
                """select id, code, detail from exception
                   where subject_type = 'contract' and subject_id = $1 and status <> 'resolved'""",
                str(row["id"]),
            )
        return RegisteredContract(
            row["id"],
            row["status"],
            row["current_version"],
            row["project_id"],
            False,
            [RaisedException(r["id"], r["code"], r["detail"]) for r in open_rows],
        )

    async def _governance(self, cmd: ContractIn) -> list[Finding]:
        # Backend look-ups happen before the transaction: no HTTP call holds a database lock.
        erp_customer = await self.erp.find_customer(cmd.customer.external_id)
        jurisdiction = await self.tax.find_jurisdiction(cmd.tax.jurisdiction)
        async with self.db.connection() as conn:
            legal_entity = await store.find_legal_entity(conn, cmd.legal_entity)
        findings = governance_findings(
            customer_external_id=cmd.customer.external_id,
            erp_customer=erp_customer,
            legal_entity_code=cmd.legal_entity,
            legal_entity=legal_entity,
            currency=cmd.currency,
            jurisdiction=cmd.tax.jurisdiction,
            jurisdiction_known=jurisdiction is not None,
        )
        plan = milestone_sum_finding(cmd.billing_model, cmd.total_value, [m.amount for m in cmd.milestones])
        return findings + ([plan] if plan else [])

    async def recheck_governance(self, contract_id: uuid.UUID, actor: str | None) -> str:
        """Re-run activation governance on a blocked contract; activate it when every check passes."""
        async with self.db.connection() as conn:
            row = await conn.fetchrow(
                """select c.status, v.payload from contract c
                   join contract_version v on v.contract_id = c.id and v.version = 1 where c.id = $1""",
                contract_id,
            )
        if row is None:
            raise NotFound(f"contract {contract_id} does not exist")
        if row["status"] != "blocked":
            return str(row["status"])
        cmd = ContractIn.model_validate(row["payload"])
        findings = await self._governance(cmd)
        codes = [f.code for f in findings]
        async with self.db.transaction() as conn:
            contract = await store.lock_contract(conn, contract_id)
            if contract["status"] != "blocked":
                return str(contract["status"])
            stale = await conn.fetch(
                """select code from exception where subject_type = 'contract' and subject_id = $1
                   and status <> 'resolved' and code <> all($2::text[]) and code <> 'PROPAGATION_FAILED'""",
                str(contract_id),
                codes,
            )
            await resolve_exceptions(conn, "contract", str(contract_id), [r["code"] for r in stale])
            for f in findings:
                await raise_exception(conn, f.code, "contract", str(contract_id), f.detail, ["retry"], group_key=f.code)
            if findings:
                return "blocked"
            await conn.execute("update contract set status = 'active', updated_at = now() where id = $1", contract_id)
            await record_event(conn, "contract.active", "contract", str(contract_id), {"version": 1, "codes": []})
            await record_audit(conn, actor, "contract.activate", "contract", str(contract_id))
            version = contract["current_version"]
        await self.queue.enqueue(
            "propagate_contract", str(contract_id), str(version), job_id=propagation_job_id(contract_id, version)
        )
        return "active"

    async def repropagate(self, contract_id: uuid.UUID, actor: str | None) -> None:
        """Put failed propagations back to pending and queue them again (``retry`` of PROPAGATION_FAILED)."""
        async with self.db.transaction() as conn:
            rows = await conn.fetch(
                """update propagation set status = 'pending', updated_at = now()
                   where contract_id = $1 and status = 'failed' returning version""",
                contract_id,
            )
            await record_audit(conn, actor, "contract.repropagate", "contract", str(contract_id))
        for version in sorted({r["version"] for r in rows}):
            await self.queue.enqueue(
                "propagate_contract", str(contract_id), str(version), job_id=propagation_job_id(contract_id, version)
            )

    async def propagate_contract(self, contract_id: uuid.UUID, version: int, final_attempt: bool) -> list[str]:
        """Push one version's plan to the PSA (project) and the ERP (billing schedule).

        Each target is confirmed independently; a backend failure is recorded and re-raised so
        the job retries, and the last attempt leaves an exception in the integration queue.
        """
        plan = await self._plan(contract_id, version)
        async with self.db.connection() as conn:
            pending = await store.pending_propagations(conn, contract_id, version)
        for target in pending:
            try:
                await self._propagate_to(target, plan)
            except Exception as exc:
                # Only an unreachable backend is worth another try; anything else ends here, visibly.
                retryable = isinstance(exc, BackendUnavailable)
                detail = exc.detail if retryable else f"{type(exc).__name__}: {exc}"  # type: ignore[attr-defined]
                await self._propagation_failed(contract_id, version, target, detail, final_attempt or not retryable)
                raise
        async with self.db.transaction() as conn:
            await resolve_exceptions(conn, "contract", str(contract_id), ["PROPAGATION_FAILED"])
        return pending

    async def _propagate_to(self, target: str, plan: ProjectPlan) -> None:
        contract_id = uuid.UUID(plan.contract_id)
        project_id = None
        if target == "psa":
            project_id = await self.psa.provision_project(plan)
        else:
            await self.erp.upsert_billing_schedule(plan)
        async with self.db.transaction() as conn:
            if project_id is not None:
                await store.set_project(conn, contract_id, project_id)
            await store.mark_propagation(conn, contract_id, plan.version, target, "confirmed", None)
            await record_event(
                conn, "contract.propagated", "contract", plan.contract_id, {"version": plan.version, "target": target}
            )

    async def _propagation_failed(
        self, contract_id: uuid.UUID, version: int, target: str, detail: str, final: bool
    ) -> None:
        async with self.db.transaction() as conn:
            await store.mark_propagation(conn, contract_id, version, target, "failed" if final else "pending", detail)
            if final:
                await raise_exception(
                    conn,
                    "PROPAGATION_FAILED",
                    "contract",
                    str(contract_id),
                    f"version {version} could not reach {target}: {detail}",
                    ["retry"],
                )

    async def _plan(self, contract_id: uuid.UUID, version: int) -> ProjectPlan:
        async with self.db.connection() as conn:
            row = await conn.fetchrow(
                """select c.id, c.number, c.legal_entity, c.currency, c.billing_model,
                          cu.external_id as customer_external_id, cu.name as customer_name,
                          v.start_date, v.end_date, v.total_value
                   from contract c join customer cu on cu.id = c.customer_id
                   join contract_version v on v.contract_id = c.id and v.version = $2
                   where c.id = $1""",
                contract_id,
                version,
            )
            if row is None:
                raise NotFound(f"contract {contract_id} version {version} does not exist")
            milestones = await conn.fetch(
                """select key, name, amount, due_date, depends_on from milestone
                   where contract_id = $1 and version = $2 order by due_date nulls last, key""",
                contract_id,
                version,
            )
        return ProjectPlan(
            contract_id=str(row["id"]),
            contract_number=row["number"],
            version=version,
            customer_external_id=row["customer_external_id"],
            customer_name=row["customer_name"],
            legal_entity=row["legal_entity"],
            currency=row["currency"],
            billing_model=row["billing_model"],
            budget=row["total_value"],
            start_date=row["start_date"],
            end_date=row["end_date"],
            milestones=[
                PlannedMilestone(m["key"], m["name"], m["amount"], m["due_date"], list(m["depends_on"]))
                for m in milestones
            ],
        )
