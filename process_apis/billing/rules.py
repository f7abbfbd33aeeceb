"""Pure billing decisions: grouping transactions into lines, and the tax arithmetic."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from app.money import decimal_places, quantize


@dataclass(frozen=True)
class Billable:
    id: str
    kind: str  # the line it bills on: time | expense | milestone (a release or adjustment: its entry's kind)
    amount: Decimal
    quantity: Decimal | None
    rate: Decimal | None
    role: str | None
    category: str | None
    milestone_key: str | None
    milestone_name: str | None
    is_adjustment: bool


@dataclass
class DraftLine:
    kind: str
    key: str
    description: str
    quantity: Decimal | None
    unit_price: Decimal | None
    net: Decimal
    transaction_ids: list[str] = field(default_factory=list)


def _number(value: Decimal | None) -> str:
    """A rate as a number: "200" and "200.00" are one line."""
    if value is None:
        return "None"
    places = max(2, decimal_places(value))
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


def _line_key(t: Billable) -> tuple[str, str]:
    suffix = ":adjustment" if t.is_adjustment else ""
    if t.kind == "time":
        return "time", f"{t.role}@{_number(t.rate)}{suffix}"
    if t.kind == "expense":
        return "expense", f"{t.category}{suffix}"
    return "milestone", f"{t.milestone_key}:{t.id}"  # each milestone alone


def _description(t: Billable) -> str:
    adjustment = " (adjustment)" if t.is_adjustment else ""
    if t.kind == "time":
        return f"Professional services — {t.role} at {_number(t.rate)}/h{adjustment}"
    if t.kind == "expense":
        return f"Reimbursable expenses — {t.category}{adjustment}"
    return f"Milestone {t.milestone_key}: {t.milestone_name}"


def build_lines(transactions: list[Billable]) -> list[DraftLine]:
    """Time by (role, rate, adjustment or not), expenses by (category, adjustment or not), milestones alone."""
    lines: dict[tuple[str, str], DraftLine] = {}
    for t in sorted(transactions, key=lambda t: (t.kind, t.id)):
        kind, key = _line_key(t)
        line = lines.get((kind, key))
        if line is None:
            line = DraftLine(
                kind,
                key.split(":")[0] if kind == "milestone" else key,
                _description(t),
                Decimal(0) if t.quantity is not None else None,
                t.rate if kind != "expense" else None,
                Decimal(0),
            )
            lines[(kind, key)] = line
        line.net += t.amount
        if line.quantity is not None and t.quantity is not None:
            line.quantity += t.quantity
        line.transaction_ids.append(t.id)
    order = {"milestone": 0, "time": 1, "expense": 2}
    return sorted(lines.values(), key=lambda line: (order[line.kind], line.key))


@dataclass(frozen=True)
class DraftInvoice:
    id: uuid.UUID
    contract_id: uuid.UUID
    currency: str
    kind: str
    net: Decimal
    lines: list[DraftLine]


def draft_invoice(
    invoice_id: uuid.UUID, contract_id: uuid.UUID, currency: str, billables: list[Billable]
) -> DraftInvoice:
    """One invoice per contract and currency per run; a negative net makes it a credit note."""
    lines = build_lines(billables)
    net = sum((line.net for line in lines), Decimal(0))
    return DraftInvoice(invoice_id, contract_id, currency, invoice_kind(net), net, lines)


def line_tax(net: Decimal, rate: Decimal, currency: str) -> Decimal:
    """A line's tax = round(net × rate), half-up to the currency's minor units."""
    return quantize(net * rate, currency)


def invoice_kind(net: Decimal) -> str:
    return "credit_note" if net < 0 else "invoice"
