"""What a job receives from arq, typed: its try, and the process services jobs may call.

``app/worker.py`` builds ``JobServices`` in arq's ``on_startup`` from the composition root's
services; jobs see only these, so the type checker and the import rules see every dependency.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NotRequired, TypedDict

from redis.asyncio import Redis

from process_apis.billing.service import BillingService
from process_apis.contracts.service import ContractService
from process_apis.reconciliation.service import ReconciliationService
from process_apis.recovery.service import RecoveryService

__all__ = ["JobContext", "JobServices"]


@dataclass(frozen=True)
class JobServices:
    billing: BillingService
    contracts: ContractService
    recovery: RecoveryService
    reconciliation: ReconciliationService


class JobContext(TypedDict):
    """arq's ``ctx`` as jobs read it (arq adds more keys, which jobs do not use)."""

    job_id: str
    job_try: int
    max_tries: int  # the worker's limit: arq tells a job its try number, not the limit
    services: JobServices
    time_budget: NotRequired[float]  # seconds from its queueing before a job may give up
    enqueue_time: NotRequired[datetime]  # arq's: when this job was queued
    redis: NotRequired[Redis]  # arq's own connection (counts a job's waits for an open circuit)
