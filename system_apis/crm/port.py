"""The CRM as process APIs see it: billing feedback on the contract, and its events read again.

``CrmEvents`` lets a process replay a payload the CRM system API kept (a ``MAPPING_FAILED``
exception's ``retry``) through the same mapping the route used, without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from app.canonical.intake import ContractState, MappingFailure

__all__ = ["CrmEvents", "CrmPort", "MappedEvent"]


class CrmPort(Protocol):
    """``report_billing`` raises ``BackendUnavailable`` (unreachable, throttled, failing: retried; it is
    keyed by invoice, so a repeat overwrites) or ``BackendRejected`` (refused: not retried)."""

    async def report_billing(
        self, contract_external_id: str, invoice_id: str, status: str, amount: Decimal, currency: str
    ) -> None: ...


@dataclass(frozen=True)
class MappedEvent:
    """A vendor payload read through its mapping: the canonical state, or why it could not be read."""

    subject: str | None  # the vendor's record id, when it could be read
    result: ContractState | MappingFailure


class CrmEvents(Protocol):
    def vendors(self) -> list[str]:
        """The vendors with a mapping (``salesforce``)."""
        ...

    def read_contract_event(self, vendor: str, body: bytes) -> MappedEvent:
        """Map one contract event as received, byte for byte; never raises for bad input."""
        ...
