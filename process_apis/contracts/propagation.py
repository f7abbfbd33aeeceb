"""Propagation: push a contract version's plan to the PSA (project) and the ERP (billing schedule).

A target only ever needs the newest plan, so a push always sends the contract's latest version
and confirms every earlier version still waiting for that target (``confirmed_version`` says
which version confirmed it). After each push the latest version is read again and, if an
amendment landed meanwhile, pushed again: whatever order two workers' pushes arrive in, the
last one to finish has checked that nothing newer exists, so no target is left on an old plan.
"""

from __future__ import annotations

import uuid

from app.canonical import PlannedMilestone, ProjectPlan
from app.db import Connection, Database
from app.errors import BackendUnavailable, NotFound
from app.outbox import record_event
from process_apis.contracts import propagation_store as store
from process_apis.exceptions.store import raise_exception, resolve_exceptions
from system_apis.erp.port import ErpPort
from system_apis.psa.port import PsaPort

__all__ = ["Propagator", "propagation_job_id"]

# Enough for amendments landing while we push; a contract amended faster than this is pushed by its own jobs.
_MAX_PUSHES = 5


def propagation_job_id(contract_id: uuid.UUID | str, version: int) -> str:
    return f"propagate:{contract_id}:v{version}"


class Propagator:
    def __init__(self, db: Database, erp: ErpPort, psa: PsaPort) -> None:
        self.db, self.erp, self.psa = db, erp, psa

    async def propagate(self, contract_id: uuid.UUID, version: int, final_attempt: bool) -> list[str]:
        """Bring every target of ``version`` up to date; returns the targets this try pushed to.

        Each target is confirmed independently; a backend failure is recorded and re-raised so
        the job retries, and the last attempt leaves an exception in the integration queue.
        """
        async with self.db.connection() as conn:
            pending = await store.pending_propagations(conn, contract_id, version)
        for target in pending:
            try:
                await self._push_latest(contract_id, target, version)
            except Exception as exc:
                # Only an unreachable backend is worth another try; anything else ends here, visibly.
                retryable = isinstance(exc, BackendUnavailable)
                detail = exc.detail if isinstance(exc, BackendUnavailable) else f"{type(exc).__name__}: {exc}"
                waiting = isinstance(exc, BackendUnavailable) and exc.circuit_open  # a wait, not a try
                await self._failed(
                    contract_id, version, target, detail, (final_attempt and not waiting) or not retryable
                )
                raise
        async with self.db.transaction() as conn:
            if not await store.failed_propagations(conn, contract_id):
                await resolve_exceptions(conn, "contract", str(contract_id), ["PROPAGATION_FAILED"])
        return pending

    async def _push_latest(self, contract_id: uuid.UUID, target: str, attempted: int) -> None:
        for _ in range(_MAX_PUSHES):
            async with self.db.connection() as conn:
                latest = await store.current_version(conn, contract_id)
                plan = await _plan(conn, contract_id, latest)
            project_id = await self.psa.provision_project(plan) if target == "psa" else None
            if target == "erp":
                await self.erp.upsert_billing_schedule(plan)
            async with self.db.transaction() as conn:
                if project_id is not None:
                    await store.set_project(conn, contract_id, project_id)
                for confirmed in await store.confirm_propagations(conn, contract_id, target, latest, attempted):
                    await record_event(
                        conn,
                        "propagation.confirmed",
                        "contract",
                        str(contract_id),
                        {"version": confirmed, "target": target, "confirmed_version": latest},
                    )
                if await store.current_version(conn, contract_id) == latest:
                    return

    async def _failed(self, contract_id: uuid.UUID, version: int, target: str, detail: str, final: bool) -> None:
        async with self.db.transaction() as conn:
            await store.mark_propagation(conn, contract_id, version, target, "failed" if final else "pending", detail)
            if final:
                await record_event(
                    conn,
                    "propagation.failed",
                    "contract",
                    str(contract_id),
                    {"version": version, "target": target, "error": detail},
                )
                await raise_exception(
                    conn,
                    "PROPAGATION_FAILED",
                    "contract",
                    str(contract_id),
                    f"version {version} could not reach {target}: {detail}",
                    ["retry"],
                    group_key=f"PROPAGATION_FAILED:{target}",  # one backend down: one fix, many contracts
                )

    async def repropagate(self, contract_id: uuid.UUID) -> list[int]:
        """Put failed propagations back to pending; returns the versions to queue again."""
        async with self.db.transaction() as conn:
            rows = await conn.fetch(
                """update propagation set status = 'pending', updated_at = now()
                   where contract_id = $1 and status = 'failed' returning version""",
                contract_id,
            )
        return sorted({r["version"] for r in rows})


async def _plan(conn: Connection, contract_id: uuid.UUID, version: int) -> ProjectPlan:
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
            PlannedMilestone(m["key"], m["name"], m["amount"], m["due_date"], list(m["depends_on"])) for m in milestones
        ],
    )
