"""The money rules of docs/billing.md "Time entries and expenses", as pure functions.

``price_time`` and ``price_expense`` judge one entry against the contract's terms (the precedence
of codes reads top to bottom), ``allocate_caps`` shares a cap's room in work-date order,
``adjust`` is the delta a correction after invoicing bills, and ``reason_of`` / ``release_of``
answer "why is this unbilled?". No I/O here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from app.money import quantize
from process_apis.ledger.records import EntryContent, Priced, RateStart, WorkTerms

__all__ = [
    "CAP_CODES",
    "HOLD_CODES",
    "Demand",
    "adjust",
    "allocate_caps",
    "cap_code",
    "price_expense",
    "price_time",
    "rate_on",
    "reason_of",
    "release_of",
]

# Holds without a value, and the reason a transaction held by each one gives.
HOLD_CODES = {
    "CONTRACT_BLOCKED": "contract_blocked",
    "OUTSIDE_CONTRACT_TERM": "outside_term",
    "RATE_NOT_FOUND": "rate_not_found",
    "FX_RATE_MISSING": "fx_rate_missing",
}
CAP_CODES = {"CAP_EXCEEDED": "cap_reached", "EXPENSE_CAP_EXCEEDED": "expense_cap_reached"}

_RELEASES = {
    "awaiting_billing_run": "the next billing run whose as_of covers its date invoices it",
    "cap_reached": "raise the time cap or amend the contract",
    "expense_cap_reached": "raise the category's allowance by an amendment",
    "rate_not_found": "add a rate for the role to the rate card by an amendment",
    "outside_term": "extend the contract's end date by an amendment, or correct the work date",
    "fx_rate_missing": "publish the day's FX rate, then retry the exception or run billing",
    "contract_blocked": "fix the contract's governance exceptions and retry them to activate it",
    "invoice_blocked": "fix what blocks its invoice (the customer's tax id, say) and retry the invoice",
}


def _common(terms: WorkTerms, entry: EntryContent) -> Priced | None:
    """What decides before any pricing, in the order of docs/billing.md's precedence."""
    if entry.voided:
        return Priced("non_billable", "VOIDED", Decimal(0))
    if terms.blocked:
        return Priced("held", "CONTRACT_BLOCKED", None)
    if not terms.start_date <= entry.service_date <= terms.end_date:
        return Priced("held", "OUTSIDE_CONTRACT_TERM", None)
    return None


def rate_on(rates: Iterable[RateStart], role: str, day: date) -> Decimal | None:
    """The entry with the latest start on or before the day, across all versions (newer wins a tie)."""
    best: RateStart | None = None
    for r in rates:
        if r.role == role and r.start <= day and (best is None or (r.start, r.version) > (best.start, best.version)):
            best = r
    return best.rate if best else None


def price_time(terms: WorkTerms, entry: EntryContent) -> Priced:
    """amount = round(hours x rate for the work date); fixed-fee time is cost-only."""
    assert entry.hours is not None and entry.role is not None
    cost = quantize(entry.hours * entry.cost_rate, terms.currency) if entry.cost_rate is not None else None
    decided = _common(terms, entry)
    if decided is not None:
        return Priced(decided.billing, decided.code, decided.value, cost=cost)
    if terms.billing_model == "fixed_fee":
        return Priced("non_billable", "FIXED_FEE", Decimal(0), cost=cost)
    rate = rate_on(terms.rates, entry.role, entry.service_date)
    if rate is None:
        return Priced("held", "RATE_NOT_FOUND", None, cost=cost)
    return Priced("billable", None, quantize(entry.hours * rate, terms.currency), rate=rate, cost=cost)


def price_expense(terms: WorkTerms, entry: EntryContent, fx_rate: Decimal | None) -> Priced:
    """amount = round(amount x the FX rate of the incurred-on day), in the contract currency."""
    assert entry.amount is not None and entry.category is not None
    converted = quantize(entry.amount * fx_rate, terms.currency) if fx_rate is not None else None
    decided = _common(terms, entry)
    if decided is not None:
        return Priced(decided.billing, decided.code, decided.value, fx_rate=fx_rate, converted=converted)
    if entry.category not in terms.allowances:
        return Priced("non_billable", "NOT_REIMBURSABLE", Decimal(0), fx_rate=fx_rate, converted=converted)
    if converted is None:
        return Priced("held", "FX_RATE_MISSING", None)
    return Priced("billable", None, converted, fx_rate=fx_rate, converted=converted, cost=converted)


@dataclass(frozen=True)
class Demand:
    """Money an entry asks of a cap: positive competes for room, negative (a credit) frees it."""

    entry_id: uuid.UUID
    service_date: date
    external_id: str
    source: str
    amount: Decimal


def allocate_caps(demands: Sequence[Demand], room: Decimal | None) -> dict[uuid.UUID, Decimal]:
    """The billable part of each demand. Room goes in work-date order, ties by external id by code
    point (Python compares str by code point, as ``COLLATE "C"``), then source; a straddling demand
    splits. A negative demand is never held and frees its room first."""
    if room is None:
        return {d.entry_id: d.amount for d in demands}
    room += sum((-d.amount for d in demands if d.amount < 0), Decimal(0))
    billable = {d.entry_id: d.amount for d in demands if d.amount <= 0}
    for d in sorted((d for d in demands if d.amount > 0), key=lambda d: (d.service_date, d.external_id, d.source)):
        part = min(d.amount, max(room, Decimal(0)))
        billable[d.entry_id] = part
        room -= part
    return billable


def adjust(new_value: Decimal | None, invoiced: Decimal) -> Decimal:
    """A correction after invoicing bills new value - invoiced value; no value counts as 0 (a full credit)."""
    return (new_value or Decimal(0)) - invoiced


def cap_code(pool: str) -> str:
    return "CAP_EXCEEDED" if pool == "time" else "EXPENSE_CAP_EXCEEDED"


def reason_of(code: str | None) -> str:
    """The reason a held transaction gives for its code."""
    if code in HOLD_CODES:
        return HOLD_CODES[code]
    if code in CAP_CODES:
        return CAP_CODES[code]
    raise ValueError(f"{code} holds nothing")


def release_of(reason: str | None) -> str | None:
    """What would release a transaction held or unbilled for that reason, in words."""
    return _RELEASES.get(reason) if reason else None
