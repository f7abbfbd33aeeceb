"""Re-evaluation: re-judge a contract's unbilled and held work after something it depends on changed.

Called inside the caller's transaction (an amendment, or its dry run, which rolls it back), so a
preview is the real thing undone. Today the ledger holds milestone transactions only, which an
amendment never re-prices (an accepted milestone cannot be re-priced) and nothing holds; time
and expense pricing, caps and releases come with the policy engine and extend this function.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from app.db import Connection

__all__ = ["Reevaluation", "Released", "Repriced", "reevaluate_contract"]


@dataclass(frozen=True)
class Repriced:
    transaction_id: uuid.UUID
    before: Decimal
    after: Decimal


@dataclass(frozen=True)
class Released:
    external_id: str
    amount: Decimal


@dataclass(frozen=True)
class Reevaluation:
    repriced: list[Repriced] = field(default_factory=list)
    released: list[Released] = field(default_factory=list)


async def reevaluate_contract(conn: Connection, contract_id: uuid.UUID, since: date) -> Reevaluation:
    """Re-price unbilled work dated on or after ``since`` and release what freed room allows.

    Milestone transactions keep the amount of the version in force on their acceptance date,
    and nothing is held yet, so there is nothing to change: the answer is empty by the rules,
    not by omission (tests/integration/test_amendments.py shows an accepted milestone untouched).
    """
    del conn, contract_id, since  # the policy engine's time and expense rules will read them
    return Reevaluation()
