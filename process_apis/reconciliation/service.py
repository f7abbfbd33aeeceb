"""Reconcile psbridge's posted invoices with the ERP: a run reads every invoice and credit memo the
ERP holds (outside any transaction), finds what disagrees, and records the run, its mismatches (each
a finance work item, resolved by itself once a later run finds the invoice in order) and, per
contract, the money each system holds."""

from __future__ import annotations

import uuid
from datetime import date

from app.db import Database
from app.observability import correlation_id
from app.outbox import record_event
from process_apis.exceptions.store import raise_exception, resolve_exceptions
from process_apis.reconciliation import store
from process_apis.reconciliation.rules import erp_posted_by_contract, find_mismatches
from system_apis.erp.port import ErpPort

__all__ = ["ReconciliationService"]

CODE = "RECONCILIATION_MISMATCH"


class ReconciliationService:
    def __init__(self, db: Database, erp: ErpPort) -> None:
        self.db, self.erp = db, erp

    async def run(self, as_of: date, actor: str | None) -> uuid.UUID:
        async with self.db.connection() as conn:
            invoices = await store.posted_invoices(conn, as_of)
        documents = await self.erp.list_documents()
        mismatches = find_mismatches(invoices, documents)
        reconciliation_id = uuid.uuid4()
        async with self.db.transaction() as conn:
            await store.write_reconciliation(
                conn, reconciliation_id, as_of, len(invoices), mismatches,
                erp_posted_by_contract(invoices, documents), actor, correlation_id(),
            )  # fmt: skip
            for m in mismatches:
                await raise_exception(
                    conn, CODE, "invoice", str(m.invoice_id), f"{m.kind}: {m.detail}", group_key=f"{CODE}:{m.kind}"
                )
            # Items of invoices this run found in order resolve themselves (usually none: one query).
            in_order = {str(i.id) for i in invoices} - {str(m.invoice_id) for m in mismatches}
            still_open = await conn.fetch(
                """select distinct subject_id from exception
                   where code = $1 and subject_type = 'invoice' and status <> 'resolved'""",
                CODE,
            )
            for row in still_open:
                if row["subject_id"] in in_order:
                    await resolve_exceptions(conn, "invoice", row["subject_id"], [CODE], note="reconciled")
            await record_event(
                conn, "reconciliation.completed", "reconciliation", str(reconciliation_id),
                {"as_of": as_of.isoformat(), "checked": len(invoices), "mismatches": len(mismatches)},
            )  # fmt: skip
        return reconciliation_id
