"""Who is asking and what they may see: the principal of a request and the one table of rights.

Every read goes through a ``Principal``. Routes and resolvers check a ``Right`` against the one
``GRANTS`` table (REST and GraphQL alike), and queries filter rows by the principal in SQL with
``scope_clause``, so a view added later cannot forget the scope: a row outside it simply does
not exist for that key.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, get_args

from app.errors import Forbidden

__all__ = ["GRANTS", "ROLES", "SYSTEMS", "Principal", "Right", "Role", "System", "scope_clause"]

Role = Literal["admin", "integration", "finance", "project_manager", "customer", "bi"]
ROLES: tuple[Role, ...] = get_args(Role)
System = Literal["crm", "psa", "erp"]
SYSTEMS: tuple[System, ...] = get_args(System)


class Right(StrEnum):
    READ_CONTRACTS = "contracts:read"  # contracts, versions, milestones, propagation
    WRITE_CONTRACTS = "contracts:write"  # register and amend (the CRM's side)
    ACCEPT_MILESTONES = "milestones:accept"
    WRITE_WORK = "work:write"  # post, correct and void time entries and expenses (the PSA's side)
    READ_WORK = "work:read"  # time entries and expenses, their versions and transactions
    READ_BILLING = "billing:read"  # invoices, and billed / unbilled / held money
    RUN_BILLING = "billing:run"  # billing runs, invoice retries
    WORK_EXCEPTIONS = "exceptions:work"  # read, acknowledge, resolve, retry work items
    READ_MASTER_DATA = "master_data:read"
    WRITE_MASTER_DATA = "master_data:write"
    READ_BACKENDS = "backends:read"  # the /system/v1 diagnosis views onto each backend
    READ_COSTS = "costs:read"  # cost rates, cost amounts, margins
    READ_METRICS = "metrics:read"


# The one table of what each role may do, used by REST routes and GraphQL fields alike.
GRANTS: Mapping[Role, frozenset[Right]] = {
    "admin": frozenset(Right),
    "integration": frozenset(
        {
            Right.READ_CONTRACTS,
            Right.WRITE_CONTRACTS,
            Right.ACCEPT_MILESTONES,
            Right.WRITE_WORK,
            Right.READ_WORK,
            Right.WORK_EXCEPTIONS,
            Right.READ_MASTER_DATA,
        }
    ),
    "finance": frozenset(
        {
            Right.READ_CONTRACTS,
            Right.READ_BILLING,
            Right.RUN_BILLING,
            Right.READ_WORK,
            Right.WORK_EXCEPTIONS,
            Right.READ_MASTER_DATA,
            Right.READ_BACKENDS,
            Right.READ_COSTS,
        }
    ),
    "project_manager": frozenset(
        {
            Right.READ_CONTRACTS,
            Right.ACCEPT_MILESTONES,
            Right.READ_BILLING,
            Right.READ_WORK,
            Right.WORK_EXCEPTIONS,
            Right.READ_MASTER_DATA,
        }
    ),
    # What a customer may read, and only its own, and only through the portal's persisted
    # GraphQL operations: no REST route answers a customer key (see Principal.rest_allowed).
    "customer": frozenset({Right.READ_CONTRACTS, Right.READ_BILLING}),
    "bi": frozenset({Right.READ_CONTRACTS, Right.READ_BILLING, Right.READ_MASTER_DATA, Right.READ_METRICS}),
}


@dataclass(frozen=True)
class Principal:
    """The API client behind a request, with the slice of the world its key is bound to."""

    id: uuid.UUID
    name: str
    role: Role
    customers: tuple[str, ...] = ()  # customer external ids (a customer key: exactly one)
    contracts: tuple[uuid.UUID, ...] = ()  # contracts a project manager's key manages
    system: System | None = None  # the system an integration key speaks for

    @property
    def restricted(self) -> bool:
        """True when the key sees only some contracts: a customer, or a project manager bound to some."""
        return self.role == "customer" or bool(self.customers or self.contracts)

    @property
    def rest_allowed(self) -> bool:
        # docs/api.md: a customer key reaches only /graphql (the portal's persisted operations).
        return self.role != "customer"

    def may(self, right: Right) -> bool:
        return right in GRANTS[self.role]

    def require(self, right: Right) -> None:
        if not self.may(right):
            allowed = sorted(role for role, rights in GRANTS.items() if right in rights)
            raise Forbidden(f"role {self.role!r} may not do this ({right}); allowed: {', '.join(allowed)}")

    def scope_args(self) -> tuple[bool, list[str], list[uuid.UUID]]:
        """The three parameters of ``scope_clause``, in order."""
        return self.restricted, list(self.customers), list(self.contracts)


def scope_clause(first_param: int, contract_id: str = "c.id", customer_external_id: str = "cu.external_id") -> str:
    """SQL that keeps only rows the principal may see; pass ``*principal.scope_args()`` from ``$first_param``.

    An unrestricted key sees everything; a restricted one sees the contracts of its customers and
    the contracts it is bound to, nothing else (a restricted key bound to nothing sees nothing).
    """
    n = first_param
    return (
        f"(not ${n}::bool or {customer_external_id} = any(${n + 1}::text[]) or {contract_id} = any(${n + 2}::uuid[]))"
    )
