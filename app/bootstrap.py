"""The composition root: the one place that wires HTTP clients to system API ports.

``build_services(settings)`` is used by the web lifespan, the worker's startup and the
tests alike. Tests may pass ``transport`` to reach the sandbox in-process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import httpx

from app.circuit import CircuitSettings, CircuitState, SharedCircuit
from app.db import Database, create_pool
from app.settings import Settings
from app.tasks import ArqTaskQueue, TaskQueue
from app.throttle import SharedThrottle
from process_apis.billing.service import BillingService
from process_apis.contracts.service import ContractService
from process_apis.exceptions.service import ExceptionService
from process_apis.intake.service import IntakeService
from process_apis.milestones.service import MilestoneService
from process_apis.reconciliation.service import ReconciliationService
from process_apis.recovery.replay import ReplayService
from process_apis.recovery.service import RecoveryService
from process_apis.work.service import WorkService
from system_apis.crm.client import HttpCrm
from system_apis.crm.mapping import VendorMappings
from system_apis.erp.client import HttpErp
from system_apis.erp.gated import ThrottledErp
from system_apis.erp.port import ErpPort
from system_apis.fx.client import HttpFx
from system_apis.fx.port import FxPort
from system_apis.http import build_http_client
from system_apis.psa.client import HttpPsa
from system_apis.tax.client import HttpTax
from system_apis.tax.guarded import GuardedTax
from system_apis.tax.port import TaxPort

__all__ = ["Services", "build_services"]


@dataclass
class Services:
    settings: Settings
    db: Database
    queue: TaskQueue
    erp: ErpPort
    tax: TaxPort
    fx: FxPort
    contracts: ContractService
    milestones: MilestoneService
    work: WorkService
    billing: BillingService
    recovery: RecoveryService
    reconciliation: ReconciliationService
    replay: ReplayService
    exceptions: ExceptionService
    intake: IntakeService
    circuits: dict[str, SharedCircuit]

    async def circuit_states(self) -> dict[str, CircuitState]:
        return {name: await circuit.state() for name, circuit in self.circuits.items()}

    async def ready(self) -> dict[str, bool]:
        checks = {}
        try:
            checks["database"] = await self.db.ping()
        except Exception:  # readiness reports; it must not raise
            checks["database"] = False
        try:
            checks["redis"] = await self.queue.ping()
        except Exception:
            checks["redis"] = False
        return checks


@asynccontextmanager
async def build_services(
    settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[Services]:
    pool = await create_pool(settings.required_database_url, settings.db_pool_min, settings.db_pool_max)
    queue = await ArqTaskQueue.connect(settings.required_redis_url, settings.queue_name)
    http = build_http_client(settings.outbound_timeout_seconds, transport)
    try:
        db = Database(pool)
        throttle = SharedThrottle(
            queue.pool,
            f"erp:{settings.erp_url}",  # one budget per ERP endpoint, shared by every process that calls it
            settings.erp_rate_limit,
            settings.erp_max_concurrency,
            lease_seconds=settings.outbound_timeout_seconds * 3,
        )
        circuit = CircuitSettings(
            window=settings.circuit_window,
            min_calls=settings.circuit_window,
            failure_ratio=settings.circuit_failure_ratio,
            cooldown=settings.circuit_cooldown_seconds,
        )
        # Named by deployment (its queue) and backend URL: every process of one deployment shares them.
        circuits = {
            name: SharedCircuit(queue.pool, f"{settings.queue_name}:{name}:{url}", circuit)
            for name, url in (("erp", settings.erp_url), ("tax", settings.tax_url))
        }
        erp = ThrottledErp(HttpErp(http, settings.erp_url), throttle, circuits["erp"])
        psa = HttpPsa(http, settings.psa_url)
        tax = GuardedTax(HttpTax(http, settings.tax_url), circuits["tax"])
        fx = HttpFx(http, settings.fx_url)
        crm = HttpCrm(http, settings.crm_url)
        contracts = ContractService(db, erp, psa, tax, queue)
        work = WorkService(db, fx)
        billing = BillingService(db, tax, erp, psa, crm, queue, work.reprice_fx)
        intake = IntakeService(db, contracts, VendorMappings.load())
        yield Services(
            settings=settings,
            db=db,
            queue=queue,
            erp=erp,
            tax=tax,
            fx=fx,
            contracts=contracts,
            milestones=MilestoneService(db),
            work=work,
            billing=billing,
            recovery=RecoveryService(db, queue, timedelta(seconds=settings.sweep_grace_seconds)),
            reconciliation=ReconciliationService(db, erp),
            replay=ReplayService(db, queue, billing, contracts, timedelta(seconds=settings.sweep_grace_seconds)),
            exceptions=ExceptionService(db, contracts, billing, intake, work),
            intake=intake,
            circuits=circuits,
        )
    finally:
        await http.aclose()
        await queue.close()
        await pool.close()
