"""Propagate a contract version to the PSA and the ERP."""

from __future__ import annotations

import uuid
from typing import Any

from app.errors import BackendUnavailable
from jobs.retry import bind_correlation, is_final_attempt, retry_later


async def propagate_contract(
    ctx: dict[str, Any], contract_id: str, version: str, correlation_id: str | None = None
) -> list[str]:
    bind_correlation(ctx, correlation_id)
    services = ctx["services"]
    try:
        return await services.contracts.propagate_contract(uuid.UUID(contract_id), int(version), is_final_attempt(ctx))
    except BackendUnavailable as exc:
        if is_final_attempt(ctx):
            raise
        raise retry_later(ctx, exc) from exc
