"""Vendor CRM JSON -> canonical contract, driven by one data file per vendor in ``mappings/``.

Being built: see the CRM system API brief.
"""

from __future__ import annotations

from system_apis.crm.port import MappedEvent

__all__ = ["VendorMappings"]


class VendorMappings:
    """Every vendor mapping under ``mappings/``; implements ``system_apis.crm.port.CrmEvents``."""

    @classmethod
    def load(cls) -> VendorMappings:
        return cls()

    def vendors(self) -> list[str]:
        return []

    def read_contract_event(self, vendor: str, body: bytes) -> MappedEvent:
        raise NotImplementedError
