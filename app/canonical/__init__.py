"""Canonical objects (schema v1) exchanged between process APIs and system API ports.

Ports speak these words; each system API maps its vendor's JSON to and from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal


@dataclass(frozen=True)
class ErpCustomer:
    external_id: str
    name: str
    subsidiary: str
    erp_id: str | None = None


@dataclass(frozen=True)
class ErpDocument:
    """An invoice or credit memo as the ERP holds it, whoever keyed it (psbridge, or a person by hand)."""

    kind: str  # invoice | credit_note
    erp_id: str
    external_id: str | None  # psbridge's invoice id when psbridge posted it
    net: Decimal | None  # as psbridge counts: a credit memo's amounts are negative
    total: Decimal | None
    currency: str | None
    memo: str | None
    tran_id: str | None


@dataclass(frozen=True)
class PostingLine:
    description: str
    quantity: Decimal | None
    unit_price: Decimal | None
    net: Decimal
    tax_rate: Decimal | None
    tax: Decimal


@dataclass(frozen=True)
class InvoicePosting:
    """An invoice or credit note as the ERP receives it; ``external_id`` is psbridge's invoice id."""

    external_id: str
    kind: str  # invoice | credit_note
    customer_external_id: str
    subsidiary: str
    currency: str
    invoice_date: date
    memo: str
    lines: list[PostingLine]
    net: Decimal
    tax: Decimal
    total: Decimal


@dataclass(frozen=True)
class PlannedMilestone:
    key: str
    name: str
    amount: Decimal
    due_date: date | None
    depends_on: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ProjectPlan:
    """What delivery (PSA) and billing (ERP job) need from one contract version."""

    contract_id: str
    contract_number: str
    version: int
    customer_external_id: str
    customer_name: str
    legal_entity: str
    currency: str
    billing_model: str
    budget: Decimal | None
    start_date: date
    end_date: date
    milestones: list[PlannedMilestone]


@dataclass(frozen=True)
class TaxJurisdiction:
    code: str
    country: str
    rate: Decimal


@dataclass(frozen=True)
class TaxLineQuote:
    key: str
    net: Decimal
    rate: Decimal
    tax: Decimal


@dataclass(frozen=True)
class TaxQuote:
    treatment: str  # standard | reverse_charge | exempt_export
    rate: Decimal
    note: str | None
    lines: list[TaxLineQuote]


@dataclass(frozen=True)
class TaxRejection:
    """The tax authority's rules refuse the supply as described (e.g. missing VAT id)."""

    code: str
    detail: str


@dataclass(frozen=True)
class BilledItem:
    type: str  # time_entry | expense | milestone
    external_id: str
    invoice_id: str
