"""The ledger's side of billing runs and milestones: claiming ready money for a run, linking it to
invoice lines, and the transaction a milestone acceptance creates. Billing packages; the ledger owns."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from app.db import Connection
from app.observability import correlation_id

__all__ = [
    "BilledItem",
    "Claimed",
    "MilestoneTransaction",
    "billed_items",
    "claim_billable",
    "contracts_waiting_for_fx",
    "mark_invoiced",
    "milestone_transaction",
    "record_milestone",
]

_IN_SCOPE = """bt.status = 'unbilled' and bt.billing = 'billable' and bt.invoice_id is null
             and bt.service_date <= $1
             and ($2::text is null or c.legal_entity = $2)
             and ($3::uuid[] is null or bt.contract_id = any($3))"""


@dataclass(frozen=True)
class Claimed:
    """A ready transaction a run took: what its invoice line needs."""

    id: uuid.UUID
    contract_id: uuid.UUID
    currency: str
    line_kind: Literal["time", "expense", "milestone"]  # a release or an adjustment bills on its entry's kind
    amount: Decimal
    quantity: Decimal | None
    rate: Decimal | None
    role: str | None
    category: str | None
    milestone_key: str | None
    milestone_name: str | None
    is_adjustment: bool


async def claim_billable(
    conn: Connection, as_of: date, legal_entity: str | None, contract_ids: list[uuid.UUID] | None
) -> list[Claimed]:
    """Lock the contracts in scope and their unbilled billable transactions for this run.

    A transaction-scoped advisory lock per contract keeps each contract whole within one run:
    a concurrent run skips contracts another run is billing (they are on its invoices), so no
    contract is split across two invoices of simultaneous runs. SKIP LOCKED on the rows is the
    second guard: two runs never take the same transaction.
    """
    locked = await conn.fetch(
        f"""select contract_id from (
               select distinct bt.contract_id from billing_transaction bt join contract c on c.id = bt.contract_id
               where {_IN_SCOPE} offset 0) candidates
           where pg_try_advisory_xact_lock(hashtextextended('psbridge:billing:' || contract_id::text, 0))""",
        as_of,
        legal_entity,
        contract_ids,
    )
    mine = [r["contract_id"] for r in locked]
    if not mine:
        return []
    # The contract rows too, in id order like ingestion and amendments: a batch settling a contract's
    # pending money finishes before a run takes it (and a run's packaging before the next batch).
    await conn.execute("select 1 from contract where id = any($1::uuid[]) order by id for update", mine)
    rows = await conn.fetch(
        f"""select bt.id, bt.contract_id, bt.currency, bt.amount, bt.quantity, bt.rate, bt.role, bt.category,
                  bt.milestone_key, bt.is_adjustment, m.name as milestone_name,
                  case bt.subject_type when 'time_entry' then 'time' else bt.subject_type end as line_kind
           from billing_transaction bt
           join contract c on c.id = bt.contract_id
           left join milestone m on m.contract_id = bt.contract_id and m.version = bt.subject_version
                                and m.key = bt.milestone_key
           where {_IN_SCOPE} and bt.contract_id = any($4)
           order by bt.contract_id, bt.service_date, bt.id
           for update of bt skip locked""",
        as_of,
        legal_entity,
        contract_ids,
        mine,
    )
    return [
        Claimed(
            r["id"],
            r["contract_id"],
            r["currency"],
            r["line_kind"],
            r["amount"],
            r["quantity"],
            r["rate"],
            r["role"],
            r["category"],
            r["milestone_key"],
            r["milestone_name"],
            r["is_adjustment"],
        )  # fmt: skip
        for r in rows
    ]


async def mark_invoiced(conn: Connection, links: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
    """Put each (transaction, invoice) on its invoice: from now on it is invoiced money, no longer
    pending on its entry's row."""
    await conn.execute(
        """with linked as (
               update billing_transaction bt set invoice_id = x.invoice_id, status = 'invoiced', updated_at = now()
               from unnest($1::uuid[], $2::uuid[]) as x(id, invoice_id)
               where bt.id = x.id and bt.invoice_id is null
               returning bt.entry_id, bt.amount)
           update work_entry e set pending_billable = e.pending_billable - l.amount, updated_at = now()
           from (select entry_id, sum(amount) as amount from linked where entry_id is not null group by entry_id) l
           where e.id = l.entry_id""",
        [tid for tid, _ in links],
        [invoice_id for _, invoice_id in links],
    )


async def record_milestone(
    conn: Connection, contract_id: uuid.UUID, key: str, version: int, on: date, amount: Decimal, currency: str
) -> uuid.UUID:
    """An accepted milestone's one billable transaction, dated on the acceptance date."""
    transaction_id = uuid.uuid4()
    await conn.execute(
        """insert into billing_transaction (id, contract_id, kind, subject_type, subject_id, subject_version,
               service_date, milestone_key, quantity, rate, amount, currency, billing, status, correlation_id)
           values ($1, $2, 'milestone', 'milestone', $3, $4, $5, $6, 1, $7, $7, $8, 'billable', 'unbilled', $9)""",
        transaction_id,
        contract_id,
        f"{contract_id}:{key}",
        version,
        on,
        key,
        amount,
        currency,
        correlation_id(),
    )
    return transaction_id


@dataclass(frozen=True)
class MilestoneTransaction:
    id: uuid.UUID
    amount: Decimal
    currency: str
    status: str
    name: str
    due_date: date | None
    depends_on: list[str]


async def milestone_transaction(conn: Connection, transaction_id: uuid.UUID) -> MilestoneTransaction:
    r = await conn.fetchrow(
        """select bt.id, bt.amount, bt.currency, bt.status, m.name, m.due_date, m.depends_on
           from billing_transaction bt
           join milestone m on m.contract_id = bt.contract_id and m.version = bt.subject_version
                            and m.key = bt.milestone_key
           where bt.id = $1""",
        transaction_id,
    )
    return MilestoneTransaction(
        r["id"], r["amount"], r["currency"], r["status"], r["name"], r["due_date"], list(r["depends_on"])
    )


@dataclass(frozen=True)
class BilledItem:
    subject_type: str  # time_entry | expense | milestone
    external_id: str


async def billed_items(conn: Connection, invoice_id: uuid.UUID) -> list[BilledItem]:
    """What an invoice bills, as the PSA knows it: entry external ids (milestones by their subject)."""
    rows = await conn.fetch(
        """select distinct bt.subject_type, coalesce(e.external_id, bt.subject_id) as external_id
           from billing_transaction bt left join work_entry e on e.id = bt.entry_id
           where bt.invoice_id = $1 order by 1, 2""",
        invoice_id,
    )
    return [BilledItem(r["subject_type"], r["external_id"]) for r in rows]


async def contracts_waiting_for_fx(
    conn: Connection, legal_entity: str | None, contract_ids: list[uuid.UUID] | None
) -> list[uuid.UUID]:
    """Contracts in a run's scope with expenses held for a missing FX rate."""
    rows = await conn.fetch(
        """select distinct e.contract_id from work_entry e join contract c on c.id = e.contract_id
           where e.code = 'FX_RATE_MISSING' and ($1::text is null or c.legal_entity = $1)
             and ($2::uuid[] is null or e.contract_id = any($2))""",
        legal_entity,
        contract_ids,
    )
    return [r["contract_id"] for r in rows]
