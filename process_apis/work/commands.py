"""What the PSA sends: batches of time entries or expenses, each entry parsed on its own.

One bad entry never fails the others, so the envelope is parsed first (a malformed envelope is
the request's 422) and each entry then by its own model: an entry missing a field or with a
field of the wrong type becomes a rejected result naming the field, not an error for the batch.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from app.errors import FieldError
from app.money import fits_minor_units
from app.types import BusinessDate, BusinessDateTime, Code, CurrencyCode, ExternalId, Money, NonNegativeMoney, ShortText
from process_apis.ledger.records import EntryContent, EntryKind

__all__ = [
    "MAX_ENTRIES",
    "BatchIn",
    "ControlledEntry",
    "ExpenseBatchIn",
    "ExpenseIn",
    "Parsed",
    "Rejected",
    "ResourceIn",
    "TimeEntryIn",
    "content_hash",
    "parse_entry",
]

MAX_ENTRIES = 5000

Role = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResourceIn(_Strict):
    external_id: ExternalId
    name: ShortText | None = None
    role: Role | None = Field(None, description="Required on time entries: the rate card role")
    cost_rate: NonNegativeMoney | None = Field(
        None, description="The PSA's cost per hour in the contract currency (finance and admin see costs)"
    )


class TimeEntryIn(_Strict):
    external_id: ExternalId
    contract_id: uuid.UUID
    resource: ResourceIn
    work_date: BusinessDate
    hours: Money = Field(description='Hours as a decimal string ("7.5"); billable in (0, 24]')
    description: ShortText | None = None
    approved_at: BusinessDateTime | None = Field(None, description="Missing or null: not approved (rejected)")
    void: Literal[False] = False


class ExpenseIn(_Strict):
    external_id: ExternalId
    contract_id: uuid.UUID
    resource: ResourceIn
    category: Code
    amount: Money = Field(description="In the expense currency, exact in its minor units; greater than zero")
    currency: CurrencyCode
    incurred_on: BusinessDate
    approved_at: BusinessDateTime | None = None
    receipt_uri: ShortText | None = None
    description: ShortText | None = None
    void: Literal[False] = False


class VoidIn(BaseModel):
    """Withdraw an entry (deleted or unapproved upstream): only its identity counts."""

    model_config = ConfigDict(extra="ignore")
    external_id: ExternalId
    void: Literal[True]


_ENTRIES = (
    "Up to 5,000 entries (more: 413). Each is judged on its own: an entry of another shape is not an error "
    "for the batch but a `rejected` result naming its fields, so the items accept any JSON value."
)


class BatchIn(_Strict):
    """The envelope of a batch of time entries (documented shape; entries are parsed one by one)."""

    source: Code = Field(description="The PSA the entries come from (kantata, ...): with external_id, their identity")
    entries: list[TimeEntryIn | VoidIn | Any] = Field(max_length=MAX_ENTRIES, description=_ENTRIES)


class ExpenseBatchIn(_Strict):
    """The envelope of a batch of expenses."""

    source: Code = Field(description="The PSA the entries come from (kantata, ...): with external_id, their identity")
    entries: list[ExpenseIn | VoidIn | Any] = Field(max_length=MAX_ENTRIES, description=_ENTRIES)


@dataclass(frozen=True)
class Parsed:
    index: int
    external_id: str
    contract_id: uuid.UUID | None  # None for a void
    content: EntryContent | None  # None for a void
    code: str | None  # a rejection decided by the entry alone


@dataclass(frozen=True)
class Rejected:
    index: int
    external_id: str | None
    errors: list[FieldError]


def _errors(exc: ValidationError) -> list[FieldError]:
    return [
        FieldError(loc=list(e["loc"]), msg=e["msg"].removeprefix("Value error, "), code="INVALID_VALUE")
        for e in exc.errors(include_url=False)
    ]


def _identity(raw: Any) -> str | None:
    value = raw.get("external_id") if isinstance(raw, dict) else None
    return value if isinstance(value, str) else None


class ControlledEntry:
    """An entry holding a control character: rejected with the fields at fault, never stored."""

    def __init__(self, raw: Any, errors: list[FieldError]) -> None:
        self.raw, self.errors = raw, errors


def parse_entry(kind: EntryKind, index: int, raw: Any) -> Parsed | Rejected:
    """One entry: a void, a time entry or an expense, with the rejections it decides alone (in precedence order)."""
    if isinstance(raw, ControlledEntry):
        return Rejected(index, _identity(raw.raw), raw.errors)
    if not isinstance(raw, dict):
        return Rejected(index, None, [FieldError([], "an entry must be a JSON object", "INVALID_VALUE")])
    try:
        if raw.get("void") is True:
            v = VoidIn.model_validate(raw)
            return Parsed(index, v.external_id, None, None, None)
        if kind == "time":
            return _time(index, TimeEntryIn.model_validate(raw))
        return _expense(index, ExpenseIn.model_validate(raw))
    except ValidationError as exc:
        return Rejected(index, _identity(raw), _errors(exc))


def _time(index: int, e: TimeEntryIn) -> Parsed | Rejected:
    if e.resource.role is None:
        return Rejected(index, e.external_id, [FieldError(["resource", "role"], "Field required", "MISSING_FIELD")])
    content = EntryContent(
        kind="time",
        contract_id=e.contract_id,
        service_date=e.work_date,
        resource_external_id=e.resource.external_id,
        resource_name=e.resource.name,
        role=e.resource.role,
        cost_rate=e.resource.cost_rate,
        hours=e.hours,
        description=e.description,
        approved_at=e.approved_at,
    )
    code = None
    if e.approved_at is None:
        code = "NOT_APPROVED"
    elif not Decimal(0) < e.hours <= Decimal(24):
        code = "INVALID_HOURS"
    return Parsed(index, e.external_id, e.contract_id, content, code)


def _expense(index: int, e: ExpenseIn) -> Parsed | Rejected:
    if not fits_minor_units(e.amount, e.currency):
        msg = f"{e.amount} has more decimals than {e.currency} has minor units"
        return Rejected(index, e.external_id, [FieldError(["amount"], msg, "INVALID_VALUE")])
    content = EntryContent(
        kind="expense",
        contract_id=e.contract_id,
        service_date=e.incurred_on,
        resource_external_id=e.resource.external_id,
        resource_name=e.resource.name,
        role=e.resource.role,
        cost_rate=e.resource.cost_rate,
        category=e.category,
        amount=e.amount,
        currency=e.currency,
        receipt_uri=e.receipt_uri,
        description=e.description,
        approved_at=e.approved_at,
    )
    code = None
    if e.approved_at is None:
        code = "NOT_APPROVED"
    elif e.amount <= 0:
        code = "INVALID_AMOUNT"
    return Parsed(index, e.external_id, e.contract_id, content, code)


def _num(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def content_hash(c: EntryContent) -> str:
    """Equal content hashes equal: numbers compare as numbers ("7.5" is "7.50"), voids never equal content."""
    parts = [
        c.kind, str(c.contract_id), c.service_date.isoformat(), c.resource_external_id, c.resource_name, c.role,
        _num(c.cost_rate), _num(c.hours), c.description, c.category, _num(c.amount), c.currency, c.receipt_uri,
        c.approved_at.astimezone(UTC).isoformat() if c.approved_at else None, "void" if c.voided else "",
    ]  # fmt: skip
    return hashlib.sha256(repr(parts).encode()).hexdigest()
