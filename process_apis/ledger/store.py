"""Reads of a contract's money: what is unbilled and what is held, as docs/billing.md defines them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from app.db import Connection

__all__ = ["Balances", "contract_balances"]


@dataclass(frozen=True)
class Balances:
    unbilled: Decimal  # billable, not on a queued, posting or posted invoice (a blocked one included)
    held: Decimal  # held amounts that have a value


async def contract_balances(conn: Connection, contract_id: uuid.UUID) -> Balances:
    row = await conn.fetchrow(
        """select coalesce(sum(bt.amount) filter (
                      where bt.billing = 'billable' and bt.status in ('unbilled', 'invoiced')
                        and (i.id is null or i.status not in ('queued', 'posting', 'posted'))), 0) as unbilled,
                  coalesce(sum(bt.amount) filter (where bt.status = 'held'), 0) as held
           from billing_transaction bt left join invoice i on i.id = bt.invoice_id
           where bt.contract_id = $1""",
        contract_id,
    )
    return Balances(row["unbilled"], row["held"])
