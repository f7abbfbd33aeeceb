"""The ledger's typed records: the terms work is judged by, an entry's content and judgement,
its money not yet on an invoice, and the writes a settlement makes. Frozen, no ``Any``."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

__all__ = [
    "Billing",
    "EntryBook",
    "EntryContent",
    "EntryKind",
    "Judged",
    "Pending",
    "PendingBilling",
    "Priced",
    "RateStart",
    "Released",
    "Repriced",
    "Settled",
    "TxnKind",
    "TxnUpdate",
    "TxnWrite",
    "WorkTerms",
]

EntryKind = Literal["time", "expense"]
Billing = Literal["billable", "non_billable", "held"]
TxnKind = Literal["time", "expense", "milestone", "release", "adjustment"]
PendingBilling = Literal["billable", "held"]


@dataclass(frozen=True)
class RateStart:
    """A rate card entry as it applies: from ``start`` = max(requested start, its version's effective date)."""

    role: str
    rate: Decimal
    start: date
    version: int


@dataclass(frozen=True)
class WorkTerms:
    """What judging work needs of a contract: the newest version's term, caps and categories, every rate."""

    contract_id: uuid.UUID
    currency: str
    billing_model: str
    blocked: bool
    start_date: date
    end_date: date
    time_cap: Decimal | None
    allowances: Mapping[str, Decimal | None]  # reimbursable category -> its cap (None: uncapped)
    rates: tuple[RateStart, ...]

    def capped_pools(self) -> set[str]:
        pools = {f"expense:{category}" for category, cap in self.allowances.items() if cap is not None}
        return pools | {"time"} if self.time_cap is not None else pools

    def cap_of(self, pool: str) -> Decimal | None:
        if pool == "time":
            return self.time_cap
        return self.allowances.get(pool.removeprefix("expense:"))


@dataclass(frozen=True)
class EntryContent:
    """One version of a time entry or an expense, as the PSA sent it (a void repeats the last content)."""

    kind: EntryKind
    contract_id: uuid.UUID
    service_date: date  # time: work date; expense: incurred on
    resource_external_id: str | None = None
    resource_name: str | None = None
    role: str | None = None
    cost_rate: Decimal | None = None
    hours: Decimal | None = None
    description: str | None = None
    category: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    receipt_uri: str | None = None
    approved_at: datetime | None = None
    voided: bool = False


@dataclass(frozen=True)
class Priced:
    """An entry judged by the rules in force: ``value`` None means held without a value."""

    billing: Billing
    code: str | None
    value: Decimal | None
    rate: Decimal | None = None
    fx_rate: Decimal | None = None
    converted: Decimal | None = None
    cost: Decimal | None = None


@dataclass(frozen=True)
class Pending:
    """A transaction of an entry not yet on any invoice (it may still change)."""

    id: uuid.UUID
    kind: TxnKind
    amount: Decimal
    billing: Literal["billable", "held"]


@dataclass(frozen=True)
class EntryBook:
    """An entry's money as stored: its last judgement, its pending transactions and what is invoiced."""

    id: uuid.UUID
    kind: EntryKind
    contract_id: uuid.UUID
    source: str
    external_id: str
    service_date: date
    role: str | None
    category: str | None
    rate: Decimal | None
    billing: Billing
    code: str | None
    value: Decimal | None
    adjusting: bool
    invoiced: Decimal = Decimal(0)
    has_invoiced: bool = False
    pending: tuple[Pending, ...] = ()
    is_new: bool = False  # not stored yet: this request creates it
    version: int = 0  # its current version as stored

    @property
    def pool(self) -> str:
        return "time" if self.kind == "time" else f"expense:{self.category}"

    @property
    def demand(self) -> Decimal:
        """Money this entry still asks for: its pending billable and held amounts."""
        return sum((p.amount for p in self.pending), Decimal(0))


@dataclass(frozen=True)
class Judged:
    """An entry re-judged now: its new judgement and the transaction details it prices with."""

    book: EntryBook  # as stored before (for a new entry: an empty book)
    priced: Priced
    content: EntryContent
    adjusting: bool  # corrected after invoicing: pending money is new value - invoiced
    rebuild: bool  # its content or value changed: re-price pending transactions in place
    version: int  # the entry version this judgement prices (lineage of its transactions)


@dataclass(frozen=True)
class TxnWrite:
    id: uuid.UUID
    contract_id: uuid.UUID
    entry_id: uuid.UUID
    entry_version: int
    kind: TxnKind
    subject_type: str
    service_date: date
    role: str | None
    rate: Decimal | None
    quantity: Decimal | None
    category: str | None
    amount: Decimal
    currency: str
    cost_amount: Decimal | None
    billing: Literal["billable", "held"]
    reason: str | None
    is_adjustment: bool
    is_release: bool


@dataclass(frozen=True)
class TxnUpdate:
    id: uuid.UUID
    entry_version: int
    amount: Decimal
    billing: Literal["billable", "held"]
    reason: str | None
    service_date: date
    role: str | None
    rate: Decimal | None
    quantity: Decimal | None
    category: str | None


@dataclass(frozen=True)
class Repriced:
    transaction_id: uuid.UUID
    before: Decimal
    after: Decimal


@dataclass(frozen=True)
class Released:
    transaction_id: uuid.UUID
    entry_id: uuid.UUID
    external_id: str
    amount: Decimal


@dataclass(frozen=True)
class Settled:
    """An entry's state after a settlement: what its result and its row say."""

    entry_id: uuid.UUID
    contract_id: uuid.UUID
    before: str | None  # its code before the settlement
    billing: Billing
    code: str | None
    value: Decimal | None
    adjusting: bool
    billable: Decimal  # invoiced + pending billable
    held: Decimal | None  # held value, None when nothing held has a value
    adjustment: Decimal | None  # pending adjustment (new value - invoiced), None when none
    changed: bool  # its stored state differs
    priced: Priced | None  # the new judgement, None when it was not re-judged (only its allocation moved)
    # Its pending money after the settlement (kept on its row: the cap windows range over it).
    pending_billable: Decimal
    pending_held: Decimal
    pending_moved: bool  # either differs from what its row says
    new_transactions: list[uuid.UUID] = field(default_factory=list)
