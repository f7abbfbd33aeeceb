"""Pure amendment decisions: what a change order may change, the state it leads to, and the
changes between two whole states (what a CRM that sends whole contracts meant).

docs/billing.md "Amendments" reads almost line by line here. Every failing check is reported
at once, each with its field and its code, in the order of ``CODE_ORDER``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from app.canonical.contract import (
    AmendmentIn,
    ContractChanges,
    ContractIn,
    ExpenseAllowance,
    MilestoneIn,
    MilestoneUpdate,
    RateCardEntry,
    dependency_cycles,
)
from app.money import fits_minor_units, minor_units

__all__ = [
    "CODE_ORDER",
    "Allowance",
    "Identity",
    "Milestone",
    "MilestoneImpact",
    "Rate",
    "Terms",
    "Violation",
    "amended_terms",
    "amendment_violations",
    "derive_changes",
    "milestone_impact",
    "new_rates",
    "terms_of",
    "unamendable_fields",
]

Loc = tuple[str | int, ...]

# The order codes are reported in; the problem's top-level code is the first failing one.
CODE_ORDER = (
    "INVALID_EFFECTIVE_DATE",
    "INVALID_END_DATE",
    "UNKNOWN_MILESTONE",
    "DUPLICATE_MILESTONE",
    "MILESTONE_ACCEPTED",
    "MILESTONES_DO_NOT_SUM",
    "MILESTONE_DEPENDENCY_CYCLE",
    "INVALID_AMOUNT",
)


@dataclass(frozen=True)
class Violation:
    loc: Loc
    code: str
    msg: str


@dataclass(frozen=True)
class Rate:
    role: str
    rate: Decimal
    effective_from: date  # when it applies: max(requested_from, the amendment's effective date)
    requested_from: date  # what the contract or amendment asked for
    version: int


@dataclass(frozen=True)
class Allowance:
    category: str
    cap: Decimal | None


@dataclass(frozen=True)
class Milestone:
    key: str
    name: str
    amount: Decimal
    due_date: date | None
    depends_on: tuple[str, ...]


@dataclass(frozen=True)
class Terms:
    """A contract's terms as of one version (the state an amendment starts from or leads to)."""

    version: int
    effective_date: date
    billing_model: str
    currency: str
    start_date: date
    end_date: date
    total_value: Decimal | None
    time_cap: Decimal | None
    customer_tax_id: str | None
    rate_card: tuple[Rate, ...]  # every rate of this version and the earlier ones
    allowances: tuple[Allowance, ...]
    milestones: tuple[Milestone, ...]


@dataclass(frozen=True)
class MilestoneImpact:
    added: list[str]
    changed: list[str]
    removed: list[str]


def terms_of(contract: ContractIn, version: int = 1, effective_date: date | None = None) -> Terms:
    """The terms a whole canonical contract states (version 1, or a CRM's whole new state)."""
    return Terms(
        version=version,
        effective_date=effective_date or contract.start_date,
        billing_model=contract.billing_model,
        currency=contract.currency,
        start_date=contract.start_date,
        end_date=contract.end_date,
        total_value=contract.total_value,
        time_cap=contract.time_cap,
        customer_tax_id=contract.tax.customer_tax_id,
        rate_card=tuple(Rate(r.role, r.rate, r.effective_from, r.effective_from, version) for r in contract.rate_card),
        allowances=tuple(Allowance(a.category, a.cap) for a in contract.reimbursable_expenses),
        milestones=tuple(_milestone(m) for m in contract.milestones),
    )


def _milestone(m: MilestoneIn) -> Milestone:
    return Milestone(m.key, m.name, m.amount, m.due_date, tuple(m.depends_on))


def amendment_violations(before: Terms, amendment: AmendmentIn, accepted: Collection[str]) -> list[Violation]:
    """Every reason the amendment cannot apply to ``before``, all at once (empty: it applies)."""
    changes = amendment.changes
    found = [
        *_date_violations(before, amendment),
        *_milestone_violations(before, changes, accepted),
        *_plan_violations(before, amendment),
        *_amount_violations(before.currency, changes),
    ]
    return sorted(found, key=lambda v: CODE_ORDER.index(v.code))


def _date_violations(before: Terms, amendment: AmendmentIn) -> Iterator[Violation]:
    end = amendment.changes.end_date
    if end is not None and end < before.end_date:
        yield Violation(
            ("changes", "end_date"),
            "INVALID_END_DATE",
            f"end_date may only extend the term: {end.isoformat()} is before {before.end_date.isoformat()}",
        )
    new_end = max(end or before.end_date, before.end_date)
    effective = amendment.effective_date
    if not before.start_date <= effective <= new_end:
        yield Violation(
            ("effective_date",),
            "INVALID_EFFECTIVE_DATE",
            f"{effective.isoformat()} is outside the term {before.start_date.isoformat()} to {new_end.isoformat()}",
        )
    elif effective < before.effective_date:
        yield Violation(
            ("effective_date",),
            "INVALID_EFFECTIVE_DATE",
            f"{effective.isoformat()} is before version {before.version}'s effective date "
            f"{before.effective_date.isoformat()}",
        )


def _milestone_violations(before: Terms, changes: ContractChanges, accepted: Collection[str]) -> Iterator[Violation]:
    existing = {m.key: m for m in before.milestones}
    added: set[str] = set()
    for index, add in enumerate(changes.add_milestones or []):
        loc: Loc = ("changes", "add_milestones", index, "key")
        if add.key in existing:
            yield Violation(loc, "DUPLICATE_MILESTONE", f"milestone {add.key} already exists; update it instead")
        elif add.key in added:
            yield Violation(loc, "DUPLICATE_MILESTONE", f"milestone {add.key} is added twice")
        added.add(add.key)
    updated: set[str] = set()
    for index, update in enumerate(changes.update_milestones or []):
        loc = ("changes", "update_milestones", index, "key")
        current = existing.get(update.key)
        if current is None:
            yield Violation(loc, "UNKNOWN_MILESTONE", f"milestone {update.key} does not exist in the contract")
            continue
        if update.key in updated:
            yield Violation(loc, "DUPLICATE_MILESTONE", f"milestone {update.key} is updated twice")
        updated.add(update.key)
        if update.key in accepted and _reprices(current, update):
            yield Violation(
                ("changes", "update_milestones", index),
                "MILESTONE_ACCEPTED",
                f"milestone {update.key} is accepted: its amount and prerequisites can no longer change",
            )
    for index, key in enumerate(changes.remove_milestones or []):
        loc = ("changes", "remove_milestones", index)
        if key not in existing:
            yield Violation(loc, "UNKNOWN_MILESTONE", f"milestone {key} does not exist in the contract")
        elif key in accepted:
            yield Violation(loc, "MILESTONE_ACCEPTED", f"milestone {key} is accepted and cannot be removed")


def _reprices(current: Milestone, update: MilestoneUpdate) -> bool:
    new_amount = update.amount is not None and update.amount != current.amount
    new_prerequisites = update.depends_on is not None and tuple(update.depends_on) != current.depends_on
    return new_amount or new_prerequisites


def _plan_violations(before: Terms, amendment: AmendmentIn) -> Iterator[Violation]:
    """The new plan as a whole: prerequisites that exist, no cycle, a fixed fee that adds up."""
    changes = amendment.changes
    plan = _amended_plan(before.milestones, changes)
    keys = {m.key for m in plan}
    removed = set(changes.remove_milestones or [])
    asked: list[tuple[str, int, str, list[str]]] = [
        *(("add_milestones", i, a.key, a.depends_on) for i, a in enumerate(changes.add_milestones or [])),
        *(("update_milestones", i, u.key, u.depends_on or []) for i, u in enumerate(changes.update_milestones or [])),
    ]
    for field, index, key, depends_on in asked:
        unknown = sorted({k for k in depends_on if k not in keys})
        if unknown:
            yield Violation(
                ("changes", field, index, "depends_on"),
                "UNKNOWN_MILESTONE",
                f"milestone {key} depends on milestones the plan does not have: {', '.join(unknown)}",
            )
    for index, key in enumerate(changes.remove_milestones or []):
        dependants = sorted(m.key for m in plan if key in m.depends_on and m.key not in removed)
        if dependants:
            yield Violation(
                ("changes", "remove_milestones", index),
                "UNKNOWN_MILESTONE",
                f"milestone {key} is a prerequisite of {', '.join(dependants)}: update those first",
            )
    graph = {m.key: [k for k in m.depends_on if k in keys and k != m.key] for m in plan}
    for m in plan:
        if m.key in m.depends_on:
            yield Violation(("changes",), "MILESTONE_DEPENDENCY_CYCLE", f"milestone {m.key} depends on itself")
    for cycle in dependency_cycles(graph):
        path = " → ".join([*cycle, cycle[0]])
        yield Violation(("changes",), "MILESTONE_DEPENDENCY_CYCLE", f"milestone dependencies form a cycle: {path}")
    total = changes.total_value if changes.total_value is not None else before.total_value
    planned = sum((m.amount for m in plan), Decimal(0))
    if before.billing_model == "fixed_fee" and planned != total:
        yield Violation(
            ("changes", "total_value") if changes.total_value is not None else ("changes",),
            "MILESTONES_DO_NOT_SUM",
            f"the milestones would sum to {planned:f}, the total_value would be {total:f}",
        )


def _amount_violations(currency: str, changes: ContractChanges) -> Iterator[Violation]:
    # psbridge rounds what it computes, never what it is given (docs/billing.md, "Money").
    for loc, amount in _money_fields(changes):
        if amount is not None and not fits_minor_units(amount, currency):
            yield Violation(
                loc,
                "INVALID_AMOUNT",
                f"{currency} amounts have at most {minor_units(currency)} decimal places; {amount:f} has more",
            )


def _money_fields(changes: ContractChanges) -> Iterator[tuple[Loc, Decimal | None]]:
    yield ("changes", "total_value"), changes.total_value
    yield ("changes", "time_cap"), changes.time_cap
    for index, rate in enumerate(changes.rate_card or []):
        yield ("changes", "rate_card", index, "rate"), rate.rate
    for index, allowance in enumerate(changes.reimbursable_expenses or []):
        yield ("changes", "reimbursable_expenses", index, "cap"), allowance.cap
    for index, add in enumerate(changes.add_milestones or []):
        yield ("changes", "add_milestones", index, "amount"), add.amount
    for index, update in enumerate(changes.update_milestones or []):
        yield ("changes", "update_milestones", index, "amount"), update.amount


def _amended_plan(milestones: Sequence[Milestone], changes: ContractChanges) -> list[Milestone]:
    """Removals, then updates in place, then additions at the end (unknown keys are ignored here)."""
    removed = set(changes.remove_milestones or [])
    updates = {u.key: u for u in changes.update_milestones or []}
    plan = [_updated(m, updates.get(m.key)) for m in milestones if m.key not in removed]
    known = {m.key for m in plan}
    plan += [_milestone(a) for a in changes.add_milestones or [] if a.key not in known]
    return plan


def _updated(m: Milestone, update: MilestoneUpdate | None) -> Milestone:
    if update is None:
        return m
    return Milestone(
        key=m.key,
        name=update.name if update.name is not None else m.name,
        amount=update.amount if update.amount is not None else m.amount,
        due_date=update.due_date if update.due_date is not None else m.due_date,
        depends_on=tuple(update.depends_on) if update.depends_on is not None else m.depends_on,
    )


def new_rates(amendment: AmendmentIn) -> list[Rate]:
    """The amendment's rate card entries as stored: each applies from max(its date, the effective date).

    Two entries of a role that land on the same date keep the one asked to start later (it is the
    one that would be in force on that date).
    """
    kept: dict[tuple[str, date], Rate] = {}
    for entry in sorted(amendment.changes.rate_card or [], key=lambda r: r.effective_from):
        start = max(entry.effective_from, amendment.effective_date)
        kept[(entry.role, start)] = Rate(entry.role, entry.rate, start, entry.effective_from, amendment.version)
    return list(kept.values())


def amended_terms(before: Terms, amendment: AmendmentIn) -> Terms:
    """The terms after a valid amendment (check ``amendment_violations`` first)."""
    changes = amendment.changes
    added = new_rates(amendment)
    replaced = {(r.role, r.effective_from) for r in added}
    time_cap = before.time_cap
    if changes.removes_time_cap:
        time_cap = None
    elif changes.time_cap is not None:
        time_cap = changes.time_cap
    tax_id = changes.tax.customer_tax_id if changes.tax and changes.tax.customer_tax_id else before.customer_tax_id
    allowances = before.allowances
    if changes.reimbursable_expenses is not None:
        allowances = tuple(Allowance(a.category, a.cap) for a in changes.reimbursable_expenses)
    return replace(
        before,
        version=amendment.version,
        effective_date=amendment.effective_date,
        end_date=changes.end_date or before.end_date,
        total_value=changes.total_value if changes.total_value is not None else before.total_value,
        time_cap=time_cap,
        customer_tax_id=tax_id,
        rate_card=tuple(r for r in before.rate_card if (r.role, r.effective_from) not in replaced) + tuple(added),
        allowances=allowances,
        milestones=tuple(_amended_plan(before.milestones, changes)),
    )


def milestone_impact(before: Terms, after: Terms) -> MilestoneImpact:
    old = {m.key: m for m in before.milestones}
    new = {m.key: m for m in after.milestones}
    return MilestoneImpact(
        added=[k for k in new if k not in old],
        changed=[k for k in new if k in old and new[k] != old[k]],
        removed=[k for k in old if k not in new],
    )


@dataclass(frozen=True)
class Identity:
    """What makes a contract this contract: no amendment changes it."""

    number: str
    legal_entity: str
    customer_external_id: str
    tax_jurisdiction: str


def unamendable_fields(identity: Identity, before: Terms, after: ContractIn) -> list[str]:
    """Fields a whole new state changes that no amendment can (they would make it another contract)."""
    changed = [
        name
        for name, old, new in (
            ("number", identity.number, after.number),
            ("legal_entity", identity.legal_entity, after.legal_entity),
            ("customer.external_id", identity.customer_external_id, after.customer.external_id),
            ("tax.jurisdiction", identity.tax_jurisdiction, after.tax.jurisdiction),
            ("currency", before.currency, after.currency),
            ("billing_model", before.billing_model, after.billing_model),
            ("start_date", before.start_date, after.start_date),
        )
        if old != new
    ]
    if before.customer_tax_id and not after.tax.customer_tax_id:
        changed.append("tax.customer_tax_id")  # an amendment may set a tax id, not remove one
    return changed


def derive_changes(before: Terms, after: Terms) -> ContractChanges:
    """The amendment changes that turn ``before`` into the whole new state ``after``.

    Deterministic, so a CRM resending the same state derives the same changes (a resend, not a
    conflict). Rates merge: an entry of ``after`` is new unless ``before`` has the same role, rate
    and requested start; a rate missing from ``after`` stays (an amendment cannot delete one).
    """
    data: dict[str, object] = {}
    if after.total_value is not None and after.total_value != before.total_value:
        data["total_value"] = after.total_value
    if after.time_cap != before.time_cap:
        data["time_cap"] = after.time_cap  # None here removes the cap
    if after.end_date != before.end_date:
        data["end_date"] = after.end_date
    if after.customer_tax_id and after.customer_tax_id != before.customer_tax_id:
        data["tax"] = {"customer_tax_id": after.customer_tax_id}
    if {a.category: a.cap for a in after.allowances} != {a.category: a.cap for a in before.allowances}:
        data["reimbursable_expenses"] = [ExpenseAllowance(category=a.category, cap=a.cap) for a in after.allowances]
    known = {(r.role, r.rate, r.requested_from) for r in before.rate_card}
    rates = [r for r in after.rate_card if (r.role, r.rate, r.requested_from) not in known]
    if rates:
        data["rate_card"] = [RateCardEntry(role=r.role, rate=r.rate, effective_from=r.requested_from) for r in rates]
    data.update(_milestone_changes(before.milestones, after.milestones))
    return ContractChanges.model_validate(data)


def _milestone_changes(before: Sequence[Milestone], after: Sequence[Milestone]) -> dict[str, object]:
    old = {m.key: m for m in before}
    new_keys = {m.key for m in after}
    add = [
        MilestoneIn(key=m.key, name=m.name, amount=m.amount, due_date=m.due_date, depends_on=list(m.depends_on))
        for m in after
        if m.key not in old
    ]
    updates = [_update_between(old[m.key], m) for m in after if m.key in old and old[m.key] != m]
    remove = [m.key for m in before if m.key not in new_keys]
    out: dict[str, object] = {}
    if add:
        out["add_milestones"] = add
    if updates:
        out["update_milestones"] = updates
    if remove:
        out["remove_milestones"] = remove
    return out


def _update_between(old: Milestone, new: Milestone) -> MilestoneUpdate:
    fields: dict[str, object] = {"key": new.key}
    if new.name != old.name:
        fields["name"] = new.name
    if new.amount != old.amount:
        fields["amount"] = new.amount
    if new.due_date != old.due_date:
        fields["due_date"] = new.due_date  # a due date cannot be cleared by amendment: None stays unchanged
    if new.depends_on != old.depends_on:
        fields["depends_on"] = list(new.depends_on)
    return MilestoneUpdate.model_validate(fields)
