"""The canonical contract (schema v1): a new contract and an amendment, as every CRM speaks them.

The process API takes these as request bodies (validated by pydantic, documented in OpenAPI),
and each CRM system API maps its vendor's JSON to them. Field types check each value on its
own; ``ContractIn`` then checks the contract as a whole and reports every failing rule at
once, each naming its field. An amendment's rules need the contract it amends, so they live
with the contracts process (``process_apis/contracts/amendment_rules.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from app.money import fits_minor_units, minor_units
from app.types import BusinessDate, BusinessDateTime, Code, CurrencyCode, ExternalId, NonNegativeMoney, PositiveMoney

__all__ = [
    "AmendmentIn",
    "ContractChanges",
    "ContractIn",
    "CustomerRef",
    "DocumentRef",
    "ExpenseAllowance",
    "MilestoneIn",
    "MilestoneUpdate",
    "RateCardEntry",
    "TaxChange",
    "TaxTerms",
    "dependency_cycles",
]

Loc = tuple[str | int, ...]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerRef(_Strict):
    external_id: ExternalId
    name: str = Field(min_length=1, max_length=300)


class RateCardEntry(_Strict):
    role: str = Field(min_length=1, max_length=100)
    rate: NonNegativeMoney
    effective_from: BusinessDate


class ExpenseAllowance(_Strict):
    category: str = Field(min_length=1, max_length=100)
    cap: NonNegativeMoney | None = None


class MilestoneIn(_Strict):
    key: Code
    name: str = Field(min_length=1, max_length=300)
    amount: PositiveMoney
    due_date: BusinessDate | None = None
    depends_on: list[Code] = Field(default_factory=list)


class TaxTerms(_Strict):
    jurisdiction: str = Field(pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$", description="e.g. US-NY, GB, DE")
    customer_tax_id: str | None = Field(default=None, max_length=50)


class DocumentRef(_Strict):
    uri: str = Field(min_length=1, max_length=2000)
    sha256: str | None = Field(default=None, max_length=128)


# The demo's Acme contract: shown in the API docs, the first case schemathesis sends, and what the demo seeds.
ACME_EXAMPLE: dict[str, JsonValue] = {
    "source": "salesforce",
    "external_id": "800XX0001",
    "number": "SOW-2026-014",
    "customer": {"external_id": "ACME-001", "name": "Acme Holdings"},
    "legal_entity": "US01",
    "currency": "USD",
    "billing_model": "fixed_fee",
    "total_value": "300000.00",
    "start_date": "2026-01-05",
    "end_date": "2026-12-18",
    "rate_card": [{"role": "consultant", "rate": "200.00", "effective_from": "2026-01-05"}],
    "time_cap": None,
    "reimbursable_expenses": [{"category": "travel", "cap": "15000.00"}],
    "milestones": [
        {"key": "M1", "name": "Discovery", "amount": "100000.00", "due_date": "2026-03-31", "depends_on": []},
        {"key": "M2", "name": "Design", "amount": "120000.00", "due_date": "2026-06-30", "depends_on": ["M1"]},
        {"key": "M3", "name": "Rollout", "amount": "80000.00", "due_date": "2026-10-31", "depends_on": ["M2"]},
    ],
    "tax": {"jurisdiction": "US-NY", "customer_tax_id": None},
    "document": {"uri": "docs://sow/SOW-2026-014.pdf", "sha256": None},
    "signed_at": "2026-01-02T10:00:00Z",
}


class ContractIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ACME_EXAMPLE]})

    source: Code
    external_id: ExternalId
    number: str = Field(min_length=1, max_length=100)
    customer: CustomerRef
    legal_entity: Code
    currency: CurrencyCode
    billing_model: Literal["fixed_fee", "time_and_materials"]
    total_value: PositiveMoney | None = None
    start_date: BusinessDate
    end_date: BusinessDate
    rate_card: list[RateCardEntry] = Field(default_factory=list, max_length=500)
    time_cap: NonNegativeMoney | None = None
    reimbursable_expenses: list[ExpenseAllowance] = Field(default_factory=list, max_length=100)
    milestones: list[MilestoneIn] = Field(default_factory=list, max_length=500)
    tax: TaxTerms
    document: DocumentRef | None = None
    signed_at: BusinessDateTime | None = None

    @model_validator(mode="after")
    def _coherent(self) -> ContractIn:
        found = [*self._term_errors(), *_milestone_plan_errors(self.milestones), *self._minor_unit_errors()]
        if found:
            raise _rule_errors(found)
        return self

    def _term_errors(self) -> Iterator[tuple[Loc, str]]:
        if self.end_date < self.start_date:
            yield ("end_date",), "must not be before start_date"
        if self.billing_model == "fixed_fee" and self.total_value is None:
            yield ("total_value",), "a fixed_fee contract needs total_value"
        yield from _list_errors(self.rate_card, self.reimbursable_expenses, ())

    def _money_fields(self) -> Iterator[tuple[Loc, Decimal | None]]:
        yield ("total_value",), self.total_value
        yield ("time_cap",), self.time_cap
        for index, entry in enumerate(self.rate_card):
            yield ("rate_card", index, "rate"), entry.rate
        for index, allowance in enumerate(self.reimbursable_expenses):
            yield ("reimbursable_expenses", index, "cap"), allowance.cap
        for index, milestone in enumerate(self.milestones):
            yield ("milestones", index, "amount"), milestone.amount

    def _minor_unit_errors(self) -> Iterator[tuple[Loc, str]]:
        # psbridge rounds what it computes, never what it is given (docs/billing.md, "Money").
        units = minor_units(self.currency)
        for loc, amount in self._money_fields():
            if amount is not None and not fits_minor_units(amount, self.currency):
                yield loc, f"{self.currency} amounts have at most {units} decimal places; {amount:f} has more"


def _list_errors(
    rate_card: Sequence[RateCardEntry], allowances: Sequence[ExpenseAllowance], at: Loc
) -> Iterator[tuple[Loc, str]]:
    """One rate per role and start date, one allowance per category."""
    starts: set[tuple[str, object]] = set()
    for index, entry in enumerate(rate_card):
        if (entry.role, entry.effective_from) in starts:
            yield (
                (*at, "rate_card", index, "effective_from"),
                f"role {entry.role} has two rates from {entry.effective_from.isoformat()}",
            )
        starts.add((entry.role, entry.effective_from))
    seen: set[str] = set()
    for index, allowance in enumerate(allowances):
        if allowance.category in seen:
            yield (*at, "reimbursable_expenses", index, "category"), f"category {allowance.category} is listed twice"
        seen.add(allowance.category)


def _milestone_plan_errors(milestones: Sequence[MilestoneIn]) -> Iterator[tuple[Loc, str]]:
    """Unique keys, known dependencies, no milestone depending on itself, no dependency cycle."""
    position: dict[str, int] = {}
    for index, milestone in enumerate(milestones):
        if milestone.key in position:
            yield (
                ("milestones", index, "key"),
                f"milestone key {milestone.key} is already used by milestones[{position[milestone.key]}]",
            )
        position.setdefault(milestone.key, index)
    graph: dict[str, list[str]] = {key: [] for key in position}
    for index, milestone in enumerate(milestones):
        loc: Loc = ("milestones", index, "depends_on")
        unknown = sorted({key for key in milestone.depends_on if key not in position})
        if unknown:
            yield loc, f"milestone {milestone.key} depends on unknown milestones: {', '.join(unknown)}"
        if milestone.key in milestone.depends_on:
            yield loc, f"milestone {milestone.key} depends on itself ({milestone.key} → {milestone.key})"
        if position[milestone.key] == index:  # a duplicate key is reported above, not graphed twice
            graph[milestone.key] = [key for key in milestone.depends_on if key in position and key != milestone.key]
    for cycle in dependency_cycles(graph):
        path = " → ".join([*cycle, cycle[0]])
        yield ("milestones", position[cycle[0]], "depends_on"), f"milestone dependencies form a cycle: {path}"


def dependency_cycles(depends_on: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """One cycle for each group of mutually dependent milestones (a strongly connected component).

    Iterative Tarjan, so linear in milestones + dependencies and safe from Python's recursion
    limit on long chains. Each cycle starts at the group's first milestone in ``depends_on``'s
    order, and groups come in that order. Self-dependencies are left to the caller. Every
    dependency must be a key of ``depends_on``.
    """
    order = {key: i for i, key in enumerate(depends_on)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in depends_on:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(depends_on[root]))]
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(depends_on[target])))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:  # every dependency of node explored
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(group)
    groups.sort(key=lambda group: min(order[key] for key in group))
    return [_cycle_within(depends_on, set(group), min(group, key=order.__getitem__)) for group in groups]


def _cycle_within(depends_on: Mapping[str, Sequence[str]], group: set[str], start: str) -> list[str]:
    # Inside a strongly connected group every member depends on another member: walk until a repeat.
    path: list[str] = []
    at: dict[str, int] = {}
    node = start
    while node not in at:
        at[node] = len(path)
        path.append(node)
        node = next(key for key in depends_on[node] if key in group and key != node)
    return path[at[node] :]


def _rule_errors(found: list[tuple[Loc, str]], title: str = "ContractIn") -> ValidationError:
    """Several rule failures as one validation error, each at its own field (parse_body prefixes "body")."""
    return ValidationError.from_exception_data(
        title,
        [
            {"type": PydanticCustomError("contract_rule", "{reason}", {"reason": msg}), "loc": loc, "input": None}
            for loc, msg in found
        ],
    )


class MilestoneUpdate(_Strict):
    """Fields of an existing milestone to change; an absent or null field is unchanged."""

    key: Code
    name: str | None = Field(default=None, min_length=1, max_length=300)
    amount: PositiveMoney | None = None
    due_date: BusinessDate | None = None
    depends_on: list[Code] | None = Field(default=None, max_length=500)


class TaxChange(_Strict):
    customer_tax_id: str | None = Field(default=None, min_length=1, max_length=50, description="null: unchanged")


class ContractChanges(_Strict):
    """What an amendment changes. An absent or null field is unchanged, except ``time_cap: null``,
    which removes the cap; ``reimbursable_expenses`` replaces the list; ``rate_card`` merges by role."""

    total_value: PositiveMoney | None = None
    add_milestones: list[MilestoneIn] | None = Field(default=None, max_length=500)
    update_milestones: list[MilestoneUpdate] | None = Field(default=None, max_length=500)
    remove_milestones: list[Code] | None = Field(default=None, max_length=500)
    rate_card: list[RateCardEntry] | None = Field(default=None, max_length=500)
    time_cap: NonNegativeMoney | None = Field(default=None, description="null removes the cap; absent: unchanged")
    reimbursable_expenses: list[ExpenseAllowance] | None = Field(default=None, max_length=100)
    end_date: BusinessDate | None = Field(default=None, description="May only extend the term")
    tax: TaxChange | None = None

    @property
    def removes_time_cap(self) -> bool:
        return "time_cap" in self.model_fields_set and self.time_cap is None

    @model_validator(mode="after")
    def _coherent(self) -> ContractChanges:
        found = list(_list_errors(self.rate_card or [], self.reimbursable_expenses or [], ()))
        if found:
            raise _rule_errors(found, "ContractChanges")
        return self


# The demo's change order CO-7 (docs/billing.md): shown in the API docs and sent by the demo.
ACME_CHANGE_ORDER: dict[str, JsonValue] = {
    "version": 2,
    "effective_date": "2026-06-01",
    "reason": "CO-7 scope extension",
    "changes": {
        "total_value": "360000.00",
        "add_milestones": [
            {
                "key": "M4",
                "name": "Rollout wave 2",
                "amount": "60000.00",
                "due_date": "2026-11-30",
                "depends_on": ["M3"],
            }
        ],
        "reimbursable_expenses": [{"category": "travel", "cap": "20000.00"}],
    },
}


class AmendmentIn(_Strict):
    """A change order: version n+1 of a contract, in force from ``effective_date``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [ACME_CHANGE_ORDER]})

    version: int = Field(ge=2, le=100_000, description="Exactly the current version + 1")
    effective_date: BusinessDate
    reason: str | None = Field(default=None, max_length=1000)
    changes: ContractChanges = Field(default_factory=ContractChanges)
