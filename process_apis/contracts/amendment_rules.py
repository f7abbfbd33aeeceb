"""Pure amendment decisions: what a change order may change, and the terms it leads to.

docs/billing.md "Amendments" reads almost line by line here. Every failing check is reported
at once, each with its field and its code, in the order of ``CODE_ORDER``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from app.canonical.contract import AmendmentIn, ContractChanges, MilestoneUpdate, dependency_cycles
from app.money import fits_minor_units, minor_units
from process_apis.contracts.terms import Allowance, Milestone, Rate, Terms, milestone_of

__all__ = [
    "CODE_ORDER",
    "MilestoneImpact",
    "Violation",
    "amended_terms",
    "amendment_violations",
    "milestone_impact",
    "new_rates",
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
class MilestoneImpact:
    added: list[str]
    changed: list[str]
    removed: list[str]


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
    plan += [milestone_of(a) for a in changes.add_milestones or [] if a.key not in known]
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
