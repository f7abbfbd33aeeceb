"""The CRM as process APIs see it: billing feedback on the opportunity/contract."""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol


class CrmPort(Protocol):
    async def report_billing(
        self, contract_external_id: str, invoice_id: str, status: str, amount: Decimal, currency: str
    ) -> None: ...
