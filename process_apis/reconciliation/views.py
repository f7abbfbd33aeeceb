"""Reconciliation answers (API.md "Billing": reconciliations)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from app.money import quantize
from app.responses import ApiModel
from app.types import Money

__all__ = ["ContractReconciliation", "MismatchView", "ReconciliationView", "contract_view"]


class MismatchView(ApiModel):
    invoice_id: uuid.UUID
    kind: Literal["missing", "duplicate", "amount", "currency"]
    detail: str


class Drift(ApiModel):
    erp: Money = Field(description="ERP posted - psbridge billed: not zero means the ledgers disagree")
    psa: Money = Field(description="PSA told - psbridge billed: negative while billed feedback is on its way")
    crm_open: Money | None = Field(
        description="CRM contract value - billed - unbilled: value neither billed nor ready (null: T&M)"
    )


class ContractReconciliation(ApiModel):
    contract_id: uuid.UUID
    as_of: date
    reconciled_at: datetime
    currency: str
    crm_value: Money | None = Field(description="The contract's value as the CRM signed it (null: T&M)")
    psa_billed: Money = Field(description="Net of the invoices the PSA has been told are billed")
    erp_posted: Money = Field(description="Net the ERP holds under psbridge's invoice ids")
    billed: Money = Field(description="Net of psbridge's posted invoices")
    unbilled: Money = Field(description="Billable money not on a queued, posting or posted invoice")
    drift: Drift


class ReconciliationView(ApiModel):
    id: uuid.UUID
    as_of: date
    checked: int = Field(description="Posted invoices and credit notes compared with the ERP")
    mismatches: list[MismatchView]
    contracts: list[ContractReconciliation]


def contract_view(r: Any) -> ContractReconciliation:
    currency = r["currency"]

    def money(amount: Decimal) -> Decimal:
        return quantize(amount, currency)

    billed, unbilled = r["billed"], r["unbilled"]
    crm_open = None if r["crm_value"] is None else money(r["crm_value"] - billed - unbilled)
    return ContractReconciliation(
        contract_id=r["contract_id"], as_of=r["as_of"], reconciled_at=r["reconciled_at"], currency=currency,
        crm_value=None if r["crm_value"] is None else money(r["crm_value"]), psa_billed=money(r["psa_billed"]),
        erp_posted=money(r["erp_posted"]), billed=money(billed), unbilled=money(unbilled),
        drift=Drift(
            erp=money(r["erp_posted"] - billed), psa=money(r["psa_billed"] - billed), crm_open=crm_open
        ),
    )  # fmt: skip
