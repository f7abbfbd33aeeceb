"""Inbound CRM events: keep every payload, hand mapped contracts to the contracts process,
turn unmappable ones into MAPPING_FAILED exceptions, and replay them on ``retry``.

Implements ``app.canonical.intake.ContractIntake`` (wired in ``app/bootstrap.py``).
"""

from __future__ import annotations

import uuid

from app.access import Principal
from app.canonical.intake import ContractState, InboundPayload, IntakeResult, MappingFailure
from app.db import Database
from process_apis.contracts.service import ContractService
from system_apis.crm.port import CrmEvents

__all__ = ["IntakeService"]


class IntakeService:
    def __init__(self, db: Database, contracts: ContractService, events: CrmEvents) -> None:
        self.db, self.contracts, self.events = db, contracts, events

    async def receive_contract(
        self, payload: InboundPayload, state: ContractState, principal: Principal
    ) -> IntakeResult:
        raise NotImplementedError  # being built: see the CRM system API brief

    async def reject_payload(self, payload: InboundPayload, failure: MappingFailure, principal: Principal) -> uuid.UUID:
        raise NotImplementedError  # being built: see the CRM system API brief

    async def replay(self, event_id: uuid.UUID, principal: Principal) -> None:
        """Map a kept payload again (``retry`` of its MAPPING_FAILED exception) and take it if it maps now."""
        raise NotImplementedError  # being built: see the CRM system API brief
