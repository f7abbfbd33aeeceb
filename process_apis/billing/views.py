"""Invoices and billing runs as the API shows them: the response models routes build and OpenAPI documents."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import Field

from app.responses import Amount, ApiModel, Page

InvoiceStatus = Literal["draft", "queued", "posting", "posted", "blocked", "failed"]


class InvoiceSummary(ApiModel):
    id: uuid.UUID
    contract_id: uuid.UUID
    kind: Literal["invoice", "credit_note"]
    currency: str
    invoice_date: date
    net: Amount
    tax: Amount | None = Field(description="Null until quoted, and while blocked")
    total: Amount | None = Field(description="Null until quoted, and while blocked")
    status: InvoiceStatus
    erp_ref: str | None = Field(description="The ERP's internal id, once posted")
    posted_at: datetime | None
    codes: list[str] = Field(description="Why it is blocked or failed, e.g. TAX_VALIDATION_FAILED")


class InvoiceLineView(ApiModel):
    line_no: int
    kind: str
    key: str
    description: str
    quantity: str | None
    unit_price: str | None
    net: Amount
    tax_rate: str | None
    tax: Amount | None
    total: Amount | None
    transaction_ids: list[uuid.UUID]


class InvoiceDetail(InvoiceSummary):
    billing_run_id: uuid.UUID | None
    tax_treatment: str | None
    notes: str | None = Field(description="e.g. the reverse-charge legal note")
    attempts: int = Field(description="ERP posting attempts")
    last_error: str | None
    correlation_id: str | None
    created_at: datetime
    updated_at: datetime
    lines: list[InvoiceLineView]


class InvoicePage(Page[InvoiceSummary]):
    pass


class BillingRunView(ApiModel):
    id: uuid.UUID
    as_of: date
    invoices: list[InvoiceSummary] = Field(description="One per contract and currency with billable work in scope")
