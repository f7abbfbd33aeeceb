"""Settling a contract's work: from judgements and pending money to the transactions to write.

Pure. Every entry re-judged now, and every other entry with money pending in a capped pool
(its demand may shift when room changes), is allocated against its pool's cap; each entry's
pending transactions are then brought to the allocation: re-priced in place when its value
changed, a ``release`` transaction when freed room lets more of the same value bill, held
money held in one transaction. Invoiced transactions are never touched (they are not pending).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from app.ids import new_id
from process_apis.ledger.records import (
    Billing,
    EntryBook,
    Judged,
    Pending,
    PendingBilling,
    Priced,
    Released,
    Repriced,
    Settled,
    TxnKind,
    TxnUpdate,
    TxnWrite,
    WorkTerms,
)
from process_apis.ledger.rules import CAP_CODES, HOLD_CODES, Demand, adjust, allocate_caps, cap_code

__all__ = ["Plan", "demand_of", "pool_of", "settle", "settled_of_book"]

_QTY = Decimal("0.0001")


@dataclass
class Plan:
    settled: dict[uuid.UUID, Settled] = field(default_factory=dict)
    inserts: list[TxnWrite] = field(default_factory=list)
    updates: list[TxnUpdate] = field(default_factory=list)
    superseded: list[uuid.UUID] = field(default_factory=list)
    repriced: list[Repriced] = field(default_factory=list)
    released: list[Released] = field(default_factory=list)


@dataclass(frozen=True)
class _Target:
    """What one entry should have pending after the settlement."""

    book: EntryBook
    base: tuple[Billing, str | None]  # its judgement before caps
    value: Decimal | None
    adjusting: bool
    demand: Decimal  # pending money it asks for (0 when it has no value)
    rebuild: bool
    priced: Priced | None
    version: int
    service_date: date
    role: str | None
    category: str | None
    rate: Decimal | None
    hours: Decimal | None
    cost: Decimal | None

    @property
    def pool(self) -> str:
        return "time" if self.book.kind == "time" else f"expense:{self.category}"


def demand_of(j: Judged) -> Decimal:
    """The pending money a judged entry asks for: new value - invoiced (0 without a value)."""
    p, book = j.priced, j.book
    if j.adjusting:
        return adjust(p.value, book.invoiced)
    return p.value - book.invoiced if p.value is not None else Decimal(0)


def pool_of(kind: str, category: str | None) -> str:
    return "time" if kind == "time" else f"expense:{category}"


def _target_of(j: Judged) -> _Target:
    p, book = j.priced, j.book
    demand = demand_of(j)
    return _Target(
        book, (p.billing, p.code), p.value, j.adjusting, demand, j.rebuild, p, j.version, j.content.service_date,
        j.content.role, j.content.category, p.rate, j.content.hours, p.cost,
    )  # fmt: skip


def _target_kept(book: EntryBook) -> _Target:
    """An entry not re-judged: same value, same pending demand, only its allocation may move."""
    base: tuple[Billing, str | None] = ("billable", None) if book.code in CAP_CODES else (book.billing, book.code)
    return _Target(
        book, base, book.value, book.adjusting, book.demand, False, None, book.version, book.service_date,
        book.role, book.category, book.rate, None, None,
    )  # fmt: skip


def settle(
    terms: Mapping[uuid.UUID, WorkTerms],
    judged: Sequence[Judged],
    kept: Sequence[EntryBook],
    pool_invoiced: Mapping[tuple[uuid.UUID, str], Decimal],
) -> Plan:
    targets = [_target_of(j) for j in judged] + [_target_kept(b) for b in kept]
    pools: dict[tuple[uuid.UUID, str], list[_Target]] = defaultdict(list)
    for t in targets:
        pools[(t.book.contract_id, t.pool)].append(t)
    billable: dict[uuid.UUID, Decimal] = {}
    for (contract_id, pool), members in pools.items():
        cap = terms[contract_id].cap_of(pool)
        room = None if cap is None else cap - pool_invoiced.get((contract_id, pool), Decimal(0))
        demands = [
            Demand(t.book.id, t.service_date, t.book.external_id, t.book.source, t.demand)
            for t in members
            if t.demand != 0
        ]
        billable.update(allocate_caps(demands, room))
    plan = Plan()
    # In cap order, so releases (and their events) come out in the order the room went.
    for t in sorted(targets, key=lambda t: (t.service_date, t.book.external_id, t.book.source)):
        _settle_entry(plan, t, billable.get(t.book.id, Decimal(0)), terms[t.book.contract_id].currency)
    return plan


def _settle_entry(plan: Plan, t: _Target, part: Decimal, currency: str) -> None:
    book = t.book
    held = t.demand - part if t.demand > 0 else Decimal(0)
    billing, code = t.base
    if held > 0:
        code = cap_code(t.pool)
        billing = "held" if part == 0 and not book.has_invoiced else "billable"
    no_value = t.value is None and not t.adjusting
    new_ids = _plan_transactions(plan, t, part, held, code if (held > 0 or no_value) else None, currency)
    adjustment = t.demand if t.adjusting and t.demand != 0 else None
    held_pending = held if held > 0 else Decimal(0)
    plan.settled[book.id] = Settled(
        entry_id=book.id,
        contract_id=book.contract_id,
        before=book.code,
        billing=billing,
        code=code,
        value=t.value,
        adjusting=t.adjusting,
        billable=book.invoiced + part,
        held=held if held > 0 else None,
        adjustment=adjustment,
        changed=t.priced is not None
        or (billing, code, t.value, t.adjusting) != (book.billing, book.code, book.value, book.adjusting),
        priced=t.priced,
        pending_billable=part,
        pending_held=held_pending,
        pending_moved=(part, held_pending) != _pending_of(book),
        new_transactions=new_ids,
    )


def _pending_of(book: EntryBook) -> tuple[Decimal, Decimal]:
    """(billable, held) money the entry has pending as stored."""
    billable = sum((p.amount for p in book.pending if p.billing == "billable"), Decimal(0))
    return billable, book.demand - billable


def _plan_transactions(
    plan: Plan, t: _Target, part: Decimal, held: Decimal, hold_code: str | None, currency: str
) -> list[uuid.UUID]:
    book = t.book
    primary_kind: TxnKind = "adjustment" if t.adjusting else book.kind
    billables = [p for p in book.pending if p.billing == "billable"]
    helds = [p for p in book.pending if p.billing == "held"]
    new_ids: list[uuid.UUID] = []

    def insert(kind: TxnKind, amount: Decimal, billing: PendingBilling, reason: str | None) -> None:
        tid = new_id()
        new_ids.append(tid)
        plan.inserts.append(
            TxnWrite(
                id=tid, contract_id=book.contract_id, entry_id=book.id, entry_version=t.version,
                kind=kind,
                subject_type="time_entry" if book.kind == "time" else "expense", service_date=t.service_date,
                role=t.role, rate=t.rate, quantity=_quantity(t, amount), category=t.category, amount=amount,
                currency=currency, cost_amount=t.cost if kind == book.kind else None,
                billing=billing, reason=reason, is_adjustment=t.adjusting, is_release=kind == "release",
            )
        )  # fmt: skip
        if kind == "release" or (
            billing == "billable" and not book.is_new and book.value is None and t.value is not None
        ):
            plan.released.append(Released(tid, book.id, book.external_id, amount))

    def update(p: Pending, amount: Decimal, billing: PendingBilling, reason: str | None) -> None:
        plan.updates.append(
            TxnUpdate(
                p.id,
                t.version,
                amount,
                billing,
                reason,
                t.service_date,
                t.role,
                t.rate,
                _quantity(t, amount),
                t.category,
            )  # fmt: skip
        )

    if t.rebuild:
        primary = next((p for p in billables if p.kind == primary_kind), None)
        if part != 0 and primary is not None:
            update(primary, part, "billable", None)
            if primary.amount != part:
                plan.repriced.append(Repriced(primary.id, primary.amount, part))
        elif part != 0:
            insert(primary_kind, part, "billable", None)
        plan.superseded += [p.id for p in billables if p is not primary or part == 0]
    else:
        _reallocate(plan, billables, part, insert, update)
    held_reason = None
    if hold_code is not None:
        held_reason = CAP_CODES.get(hold_code) or HOLD_CODES.get(hold_code)
    if held_reason is not None:
        amount = held if held > 0 else Decimal(0)
        if helds:
            update(helds[0], amount, "held", held_reason)
        else:
            insert(primary_kind, amount, "held", held_reason)
        plan.superseded += [p.id for p in helds[1:]]
    else:
        plan.superseded += [p.id for p in helds]
    return new_ids


Insert = Callable[[TxnKind, Decimal, PendingBilling, str | None], None]
Update = Callable[[Pending, Decimal, PendingBilling, str | None], None]


def _reallocate(plan: Plan, billables: list[Pending], part: Decimal, insert: Insert, update: Update) -> None:
    """Same value, new allocation: more room releases a new part; less room shrinks the newest parts."""
    current = sum((p.amount for p in billables), Decimal(0))
    if part > current:
        insert("release", part - current, "billable", None)
        return
    excess = current - part
    for p in sorted(billables, key=lambda p: p.kind != "release"):  # releases give back first
        if excess <= 0:
            break
        take = min(p.amount, excess)
        excess -= take
        if take == p.amount:
            plan.superseded.append(p.id)
        else:
            update(p, p.amount - take, "billable", None)


def _quantity(t: _Target, amount: Decimal) -> Decimal | None:
    """Hours a time transaction bills: the entry's hours when it bills its whole value, else the part at its rate."""
    if t.book.kind != "time":
        return None
    if t.hours is not None and amount == t.value:
        return t.hours
    if t.rate:
        return (amount / t.rate).quantize(_QTY)
    return t.hours


def settled_of_book(book: EntryBook) -> Settled:
    """An entry nothing moved: its state as stored."""
    billable, held = _pending_of(book)
    pending = billable + held
    return Settled(
        entry_id=book.id,
        contract_id=book.contract_id,
        before=book.code,
        billing=book.billing,
        code=book.code,
        value=book.value,
        adjusting=book.adjusting,
        billable=book.invoiced + billable,
        held=held if held > 0 else None,
        adjustment=pending if book.adjusting and pending != 0 else None,
        changed=False,
        priced=None,
        pending_billable=billable,
        pending_held=held,
        pending_moved=False,
    )
