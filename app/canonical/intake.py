"""Intake ports: how a system API hands what a backend sent to the process layer.

A CRM webhook arrives at its system API (``system_apis/crm``), which maps the vendor's JSON to
the canonical contract and hands it, or the payload it could not map, to ``ContractIntake``.
The contracts process implements the port and ``app/bootstrap.py`` wires it, so the
dependency still points down: no system API imports a process API.

The answers are the canonical answers of ``/process/v1/contracts`` (registration) and
``/process/v1/contracts/{id}/amendments``: whoever sends a contract, by the canonical API or
through a vendor's system API, reads the same response.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, Protocol

from pydantic import Field

from app.access import Principal
from app.canonical.contract import ContractIn
from app.errors import FieldError
from app.responses import ApiModel, ExceptionRef

__all__ = [
    "AmendmentApplied",
    "ContractIntake",
    "ContractRegistered",
    "ContractState",
    "InboundPayload",
    "IntakeResult",
    "MappingFailure",
    "Propagation",
    "PropagationState",
]


class PropagationState(ApiModel):
    status: Literal["pending", "confirmed", "failed"]
    attempts: int
    last_error: str | None
    confirmed_at: datetime | None
    confirmed_version: int | None = Field(
        default=None, description="The version the target holds: this one, or a later one that superseded it"
    )


class Propagation(ApiModel):
    """Where a version stands in each target system: the PSA project and the ERP billing schedule."""

    psa: PropagationState | None = None
    erp: PropagationState | None = None


class ContractRegistered(ApiModel):
    id: uuid.UUID
    status: Literal["active", "blocked"]
    version: int
    project_id: str | None
    exceptions: list[ExceptionRef] = Field(description="One per failing activation check; empty when active")


class AmendmentApplied(ApiModel):
    id: uuid.UUID = Field(description="The contract")
    version: int = Field(description="The version this amendment created (or had created, on a resend)")
    status: Literal["active", "blocked"]
    effective_date: date
    propagation: Propagation = Field(description="This version's propagation to the PSA and the ERP")


@dataclass(frozen=True)
class ContractState:
    """A whole contract as the CRM holds it at one version: version 1 registers it, a later
    version amends it (psbridge derives the changes from the state it holds)."""

    contract: ContractIn
    version: int
    effective_date: date | None = None
    reason: str | None = None


@dataclass(frozen=True)
class InboundPayload:
    """What a backend sent, byte for byte, kept for lineage and replay."""

    system: Literal["crm", "psa", "erp"]
    vendor: str
    body: bytes
    subject: str | None  # the vendor's record id, when it could be read
    id: uuid.UUID = field(default_factory=uuid.uuid4)  # what psbridge files it under (inbound_event.id)


@dataclass(frozen=True)
class MappingFailure:
    """Why a payload could not become a canonical contract; ``errors`` use the vendor's field names."""

    detail: str
    errors: list[FieldError]


@dataclass(frozen=True)
class IntakeResult:
    created: bool  # False: the same state again (a redelivered webhook), nothing changed
    answer: ContractRegistered | AmendmentApplied


class ContractIntake(Protocol):
    async def receive_contract(
        self, payload: InboundPayload, state: ContractState, principal: Principal
    ) -> IntakeResult:
        """Register version 1 or amend to ``state.version``; the payload is kept whatever happens.

        Raises the canonical API's errors (403 FIELD_NOT_OWNED, 409 VERSION_CONFLICT, 422 ...).
        """
        ...

    async def reject_payload(self, payload: InboundPayload, failure: MappingFailure, principal: Principal) -> uuid.UUID:
        """Keep a payload that could not be mapped and raise a MAPPING_FAILED exception; its id."""
        ...
