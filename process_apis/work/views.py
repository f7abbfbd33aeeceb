"""What the time-entry and expense routes answer: per-entry results, and an entry's whole state."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Literal

from pydantic import Field

from app.responses import Amount, ApiModel, amount
from process_apis.ledger.rules import release_of
from process_apis.ledger.store import Lineage, TransactionRow
from process_apis.work.service import EntryResult
from process_apis.work.store import EntryDetail, VersionRow

__all__ = ["BatchResults", "EntryView", "ExpenseBatchResults", "entry_view", "expense_results", "time_results"]

Status = Literal["accepted", "duplicate", "corrected", "held", "rejected", "voided"]
BillingState = Literal["billable", "non_billable", "held"]
Reason = Literal[
    "awaiting_billing_run",
    "cap_reached",
    "expense_cap_reached",
    "rate_not_found",
    "outside_term",
    "fx_rate_missing",
    "contract_blocked",
    "invoice_blocked",
]


class EntryError(ApiModel):
    loc: list[str | int]
    msg: str


class TimeEntryResult(ApiModel):
    external_id: str | None
    status: Status = Field(description="What this request did to the entry")
    billing: BillingState | None = Field(description="Its state after the whole request (null when rejected)")
    amount: Amount | None = Field(description='Billable now (invoiced + pending), "0.00" when none; null if rejected')
    held_amount: Amount | None = Field(description="Held value; null when none or held without a value")
    adjustment_amount: Amount | None = Field(description="Pending credit/rebill of a correction after invoicing")
    currency: str | None
    codes: list[str] = Field(description="The deciding code (DESIGN precedence), empty when none")
    errors: list[EntryError] | None = Field(None, description="INVALID_ENTRY only: the fields at fault")


class ExpenseResult(TimeEntryResult):
    converted_amount: Amount | None = Field(description="The amount in the contract currency at the day's FX rate")


class BatchResults(ApiModel):
    results: list[TimeEntryResult]


class ExpenseBatchResults(ApiModel):
    results: list[ExpenseResult]


def _money(value: Decimal | None, currency: str | None) -> str | None:
    return amount(value, currency) if value is not None else None


def _result_fields(r: EntryResult) -> dict[str, object]:
    return {
        "external_id": r.external_id,
        "status": r.status,
        "billing": r.billing,
        "amount": _money(r.amount, r.currency),
        "held_amount": _money(r.held_amount, r.currency),
        "adjustment_amount": _money(r.adjustment_amount, r.currency),
        "currency": r.currency,
        "codes": r.codes,
        "errors": [EntryError(loc=list(e.loc), msg=e.msg) for e in r.errors] if r.errors is not None else None,
    }


# A batch answers thousands of results: they are built as plain dicts (the same fields as the models
# above, which document them and are checked against them in tests), not as a pydantic model each.
def _plain(r: EntryResult) -> dict[str, object]:
    fields = _result_fields(r)
    if r.errors is not None:
        fields["errors"] = [{"loc": list(e.loc), "msg": e.msg} for e in r.errors]
    return fields


def time_results(results: list[EntryResult]) -> dict[str, object]:
    return {"results": [_plain(r) for r in results]}


def expense_results(results: list[EntryResult]) -> dict[str, object]:
    return {"results": [{**_plain(r), "converted_amount": _money(r.converted_amount, r.currency)} for r in results]}


class ResourceView(ApiModel):
    external_id: str | None
    name: str | None
    role: str | None


class VersionView(ApiModel):
    version: int
    voided: bool
    work_date: dt.date | None = Field(description="A time entry's work date")
    incurred_on: dt.date | None = Field(description="An expense's incurred-on date")
    resource: ResourceView
    hours: str | None
    category: str | None
    amount: str | None = Field(description="An expense's amount in its own currency")
    currency: str | None
    description: str | None
    approved_at: dt.datetime | None
    created_at: dt.datetime
    correlation_id: str | None = Field(description="The request that sent this version")


class TransactionView(ApiModel):
    id: uuid.UUID
    kind: Literal["time", "expense", "milestone", "release", "adjustment"]
    amount: Amount
    currency: str
    date: dt.date
    status: Literal["unbilled", "held", "invoiced"]
    invoice_id: uuid.UUID | None
    reason: Reason | None = Field(description="Why is this unbilled? Null once on a queued, posting or posted invoice")
    release: str | None = Field(description="What would release it, in words")
    correlation_id: str | None = Field(description="The request that wrote it last")


class EntryView(ExpenseResult):
    kind: Literal["time", "expense"]
    source: str
    contract_id: uuid.UUID
    versions: list[VersionView]
    transactions: list[TransactionView]


class EntryRef(ApiModel):
    kind: Literal["time", "expense"]
    source: str
    external_id: str
    version: int | None = Field(description="The entry version that priced it")


class TransactionLineage(TransactionView):
    """A transaction and where it came from: its entry version (or milestone), contract and request."""

    contract_id: uuid.UUID
    entry: EntryRef | None
    milestone_key: str | None


def lineage_view(x: Lineage) -> TransactionLineage:
    return TransactionLineage(
        **_transaction(x.row).model_dump(),
        contract_id=x.contract_id,
        entry=EntryRef(kind=x.entry_kind, source=x.source, external_id=x.external_id, version=x.entry_version)  # type: ignore[arg-type]
        if x.entry_kind
        else None,
        milestone_key=x.milestone_key,
    )


def reason_of_transaction(t: TransactionRow) -> str | None:
    if t.status == "held":
        return t.reason
    if t.invoice_id is None or t.invoice_status == "draft":
        return "awaiting_billing_run"
    if t.invoice_status in ("blocked", "failed"):
        return "invoice_blocked"
    return None


def _transaction(t: TransactionRow) -> TransactionView:
    reason = reason_of_transaction(t)
    return TransactionView(
        id=t.id,
        kind=t.kind,  # type: ignore[arg-type]
        amount=amount(t.amount, t.currency),
        currency=t.currency,
        date=t.date,
        status="invoiced" if t.invoice_id is not None else t.status,  # type: ignore[arg-type]
        invoice_id=t.invoice_id,
        reason=reason,  # type: ignore[arg-type]
        release=release_of(reason),
        correlation_id=t.correlation_id,
    )


def _version(v: VersionRow) -> VersionView:
    c = v.content
    return VersionView(
        version=v.version,
        voided=c.voided,
        work_date=c.service_date if c.kind == "time" else None,
        incurred_on=c.service_date if c.kind == "expense" else None,
        resource=ResourceView(external_id=c.resource_external_id, name=c.resource_name, role=c.role),
        hours=format(c.hours, "f") if c.hours is not None else None,
        category=c.category,
        amount=format(c.amount, "f") if c.amount is not None else None,
        currency=c.currency,
        description=c.description,
        approved_at=c.approved_at,
        created_at=v.created_at,
        correlation_id=v.correlation_id,
    )


def entry_view(d: EntryDetail) -> EntryView:
    """The entry's state read from its transactions: billable = everything not held (invoiced included)."""
    billable = sum((t.amount for t in d.transactions if t.status != "held"), Decimal(0))
    held = sum((t.amount for t in d.transactions if t.status == "held"), Decimal(0))
    pending = sum((t.amount for t in d.transactions if t.invoice_id is None), Decimal(0))
    state = EntryResult(
        external_id=d.external_id,
        status=d.status,
        billing=d.billing,
        amount=billable,
        held_amount=held if held > 0 else None,
        adjustment_amount=pending if d.adjusting and pending != 0 else None,
        currency=d.currency,
        codes=[d.code] if d.code else [],
    )
    return EntryView(
        **_result_fields(state),  # type: ignore[arg-type]
        converted_amount=_money(d.converted_amount, d.currency),
        kind=d.kind,
        source=d.source,
        contract_id=d.contract_id,
        versions=[_version(v) for v in d.versions],
        transactions=[_transaction(t) for t in d.transactions],
    )
