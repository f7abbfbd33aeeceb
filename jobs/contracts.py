"""Propagate a contract version to the PSA and the ERP."""

from __future__ import annotations

import uuid

from jobs.context import JobContext
from jobs.retry import attempt


async def propagate_contract(
    ctx: JobContext, contract_id: str, version: str, correlation_id: str | None = None
) -> list[str]:
    contracts = ctx["services"].contracts
    return await attempt(
        ctx,
        "propagate_contract",
        correlation_id,
        lambda final: contracts.propagate_contract(uuid.UUID(contract_id), int(version), final),
    )
