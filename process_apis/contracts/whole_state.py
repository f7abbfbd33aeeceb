"""A CRM that sends whole contracts (Salesforce): the amendment changes between two whole states.

Deterministic, so a CRM resending the same state derives the same changes (a resend, not a
conflict); and the fields no amendment may change are named instead of silently ignored.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.canonical.contract import (
    ContractChanges,
    ContractIn,
    ExpenseAllowance,
    MilestoneIn,
    MilestoneUpdate,
    RateCardEntry,
)
from process_apis.contracts.terms import Identity, Milestone, Terms

__all__ = ["derive_changes", "unamendable_fields"]


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
