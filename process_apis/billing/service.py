"""Billing verbs: package transactions into invoices, quote their tax, post them to the ERP once."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from app.canonical import BilledItem, InvoicePosting, PostingLine, TaxRejection
from app.db import Database
from app.errors import BackendRejected, BackendUnavailable, Conflict, NotFound
from app.observability import correlation_id
from app.outbox import record_audit, record_event
from app.tasks import TaskQueue
from process_apis.billing import store
from process_apis.billing.commands import BillingRunIn
from process_apis.billing.rules import Billable, draft_invoice, line_tax
from process_apis.exceptions.store import customer_group_key, raise_exception, resolve_exceptions
from process_apis.ledger import invoicing
from system_apis.crm.port import CrmPort
from system_apis.erp.port import ErpPort
from system_apis.psa.port import PsaPort
from system_apis.tax.port import TaxPort

__all__ = ["BillingRun", "BillingService", "feedback_job_id", "post_job_id", "quote_job_id"]

QUOTE_CONCURRENCY = 8


# Job ids name the intent: while a job for it is queued or running, enqueueing it again is a no-op.
# Workers keep no results, so once a job ends the same id may be enqueued again (a retry, the sweeper).
def post_job_id(invoice_id: uuid.UUID | str) -> str:
    return f"post:{invoice_id}"


def quote_job_id(invoice_id: uuid.UUID | str) -> str:
    return f"quote:{invoice_id}"


def feedback_job_id(invoice_id: uuid.UUID | str) -> str:
    return f"billed:{invoice_id}"


@dataclass(frozen=True)
class BillingRun:
    id: uuid.UUID
    as_of: date
    invoice_ids: list[uuid.UUID]


class BillingService:
    def __init__(
        self,
        db: Database,
        tax: TaxPort,
        erp: ErpPort,
        psa: PsaPort,
        crm: CrmPort,
        queue: TaskQueue,
        reprice_fx: Callable[[list[uuid.UUID]], Awaitable[None]],
    ) -> None:
        self.db, self.tax, self.erp, self.psa, self.crm, self.queue = db, tax, erp, psa, crm, queue
        self.reprice_fx = reprice_fx  # the work service's: expenses held FX_RATE_MISSING priced again

    async def run_billing(self, cmd: BillingRunIn, actor: str | None) -> BillingRun:
        run_id = uuid.uuid4()
        # Expenses held for a missing FX rate are priced again first: the rate may be published now.
        await self.reprice_fx(await self._fx_waiting(cmd))
        async with self.db.transaction() as conn:
            await conn.execute(
                "insert into billing_run (id, as_of, scope, correlation_id) values ($1, $2, $3, $4)",
                run_id,
                cmd.as_of,
                cmd.model_dump(mode="json", exclude={"as_of"}),
                correlation_id(),
            )
            claimed = await invoicing.claim_billable(conn, cmd.as_of, cmd.legal_entity, cmd.scope_ids())
            groups: dict[tuple[uuid.UUID, str], list[Billable]] = defaultdict(list)
            for c in claimed:
                groups[(c.contract_id, c.currency)].append(_billable(c))
            drafts = [
                draft_invoice(uuid.uuid4(), contract_id, currency, group)
                for (contract_id, currency), group in groups.items()
            ]
            await store.insert_draft_invoices(conn, run_id, cmd.as_of, drafts)
            invoice_ids = [d.id for d in drafts]
            await record_event(
                conn,
                "billing_run.completed",
                "billing_run",
                str(run_id),
                {"as_of": cmd.as_of.isoformat(), "invoices": [str(i) for i in invoice_ids]},
            )
            await record_audit(conn, actor, "billing_run.create", "billing_run", str(run_id))
        # Quotes are independent HTTP calls: overlap a few, but never flood the tax engine.
        gate = asyncio.Semaphore(QUOTE_CONCURRENCY)

        async def quote(invoice_id: uuid.UUID) -> None:
            async with gate:
                await self._quote_or_defer(invoice_id)

        await asyncio.gather(*(quote(i) for i in invoice_ids))
        return BillingRun(run_id, cmd.as_of, invoice_ids)

    async def _fx_waiting(self, cmd: BillingRunIn) -> list[uuid.UUID]:
        async with self.db.connection() as conn:
            return await invoicing.contracts_waiting_for_fx(conn, cmd.legal_entity, cmd.scope_ids())

    async def _quote_or_defer(self, invoice_id: uuid.UUID) -> str:
        """Quote now; if the tax API is unreachable, the draft stays a draft and a job quotes it later."""
        try:
            return await self.quote_invoice(invoice_id)
        except BackendUnavailable:
            await self.queue.enqueue("quote_invoice", str(invoice_id), job_id=quote_job_id(invoice_id))
            return "draft"

    async def quote_invoice(self, invoice_id: uuid.UUID) -> str:
        """Ask the tax API for the invoice's lines: queued (and enqueued) or blocked. Returns the status.

        Raises ``BackendUnavailable`` when the tax API cannot answer: the caller retries.
        """
        async with self.db.connection() as conn:
            ctx = await store.tax_context(conn, invoice_id)
            if ctx is None:
                raise NotFound(f"invoice {invoice_id} does not exist", "UNKNOWN_INVOICE")
            if ctx["status"] not in ("draft", "blocked"):
                return str(ctx["status"])
            lines = await store.invoice_lines(conn, invoice_id)
        quote = await self.tax.quote(
            ctx["seller_country"],
            ctx["tax_jurisdiction"],
            ctx["customer_tax_id"],
            ctx["currency"],
            [(str(line["line_no"]), line["net"]) for line in lines],
        )
        async with self.db.transaction() as conn:
            if isinstance(quote, TaxRejection):
                if await store.block_invoice(conn, invoice_id, "TAX_VALIDATION_FAILED"):
                    await raise_exception(
                        conn,
                        "TAX_VALIDATION_FAILED",
                        "invoice",
                        str(invoice_id),
                        f"{quote.code}: {quote.detail}",
                        ["retry"],
                        # One customer's tax data, fixed once, unblocks all its invoices.
                        group_key=await customer_group_key(conn, "TAX_VALIDATION_FAILED", ctx["contract_id"]),
                    )
                    await record_event(
                        conn, "invoice.blocked", "invoice", str(invoice_id), {"codes": ["TAX_VALIDATION_FAILED"]}
                    )
                return "blocked"
            rates = {line.key: line.rate for line in quote.lines}
            line_nos = [line["line_no"] for line in lines]
            line_rates = [rates[str(no)] for no in line_nos]
            taxes = [line_tax(line["net"], rate, ctx["currency"]) for line, rate in zip(lines, line_rates, strict=True)]
            if not await store.apply_tax(conn, invoice_id, line_nos, line_rates, taxes, quote.treatment, quote.note):
                return "queued"
            await resolve_exceptions(conn, "invoice", str(invoice_id), ["TAX_VALIDATION_FAILED"])
            await record_event(conn, "invoice.queued", "invoice", str(invoice_id), {"treatment": quote.treatment})
        await self.queue.enqueue("post_invoice", str(invoice_id), job_id=post_job_id(invoice_id))
        return "queued"

    async def retry_invoice(self, invoice_id: uuid.UUID, actor: str | None) -> None:
        """Re-quote a blocked invoice, re-drive a failed posting, or send refused billed feedback again."""
        async with self.db.transaction() as conn:
            row = await conn.fetchrow(
                """select status, attempts, feedback_due_at is null and feedback_done_at is null as feedback_refused
                   from invoice where id = $1 for update""",
                invoice_id,
            )
            if row is None:
                raise NotFound(f"invoice {invoice_id} does not exist", "UNKNOWN_INVOICE")
            if row["status"] == "posted" and row["feedback_refused"]:
                # The PSA or the CRM refused the billed feedback: due again, sent again.
                await conn.execute("update invoice set feedback_due_at = now() where id = $1", invoice_id)
                await record_audit(conn, actor, "invoice.retry_feedback", "invoice", str(invoice_id), {})
                await self.queue.enqueue("notify_billed", str(invoice_id), job_id=feedback_job_id(invoice_id))
                return
            if row["status"] not in ("blocked", "failed", "draft"):
                raise Conflict(
                    f"invoice is {row['status']}; only blocked or failed invoices are retried", "NOT_RETRYABLE"
                )
            if row["status"] == "failed":
                await conn.execute("update invoice set status = 'queued', updated_at = now() where id = $1", invoice_id)
            await record_audit(conn, actor, "invoice.retry", "invoice", str(invoice_id), {"from": row["status"]})
        if row["status"] == "failed":
            await self.queue.enqueue("post_invoice", str(invoice_id), job_id=post_job_id(invoice_id))
        else:
            await self._quote_or_defer(invoice_id)

    async def post_invoice(self, invoice_id: uuid.UUID, final_attempt: bool) -> str:
        """Upsert the invoice in the ERP by its own id: however often this runs, one ERP record."""
        async with self.db.transaction() as conn:
            claimed = await conn.fetchval(
                """update invoice set status = 'posting', attempts = attempts + 1, updated_at = now()
                   where id = $1 and status in ('queued', 'posting') returning true""",
                invoice_id,
            )
            ctx = await store.posting_context(conn, invoice_id)
            lines = await store.invoice_lines(conn, invoice_id)
        if ctx is None:
            raise NotFound(f"invoice {invoice_id} does not exist", "UNKNOWN_INVOICE")
        if not claimed:
            return str(ctx["status"])  # posted already, or blocked: nothing to do
        posting = _posting(ctx, lines)
        try:
            # After an attempt whose outcome is unknown the record may exist: write only if it does not.
            found = await self.erp.find_document(posting.kind, posting.external_id) if ctx["erp_ambiguous"] else None
            erp_ref = found.erp_id if found is not None else None
            if erp_ref is None:
                erp_ref = await self.erp.upsert_document(posting)
        except BackendUnavailable as exc:
            if final_attempt and not exc.circuit_open:  # an open circuit is a wait, not a try
                await self._fail(invoice_id, "ERP_POSTING_FAILED", exc.detail)
            async with self.db.transaction() as conn:
                await conn.execute(
                    "update invoice set last_error = $2, erp_ambiguous = erp_ambiguous or $3 where id = $1",
                    invoice_id,
                    exc.detail,
                    exc.ambiguous,
                )
            raise
        except BackendRejected as exc:
            # A closed period is finance's to reopen; any other refusal is the integration team's.
            code = "PERIOD_CLOSED" if exc.vendor_code == "PERIOD_CLOSED" else "ERP_POSTING_FAILED"
            await self._fail(invoice_id, code, f"{exc.vendor_code}: {exc.vendor_detail}")
            return "failed"
        async with self.db.transaction() as conn:
            await conn.execute(
                """update invoice set status = 'posted', erp_ref = $2, posted_at = now(), last_error = null,
                          codes = '{}', erp_ambiguous = false, feedback_due_at = now(), updated_at = now()
                   where id = $1""",
                invoice_id,
                erp_ref,
            )
            await conn.execute(
                """insert into external_ref (canonical_type, canonical_id, system, external_id)
                   values ('invoice', $1, 'erp', $2) on conflict do nothing""",
                invoice_id,
                erp_ref,
            )
            await resolve_exceptions(conn, "invoice", str(invoice_id), ["ERP_POSTING_FAILED", "PERIOD_CLOSED"])
            await record_event(
                conn,
                "invoice.posted",
                "invoice",
                str(invoice_id),
                {"erp_ref": erp_ref, "total": ctx["total"], "currency": ctx["currency"]},
            )
        # The row above is the intent: if this enqueue is lost, the sweeper finds the feedback due.
        await self.queue.enqueue("notify_billed", str(invoice_id), job_id=feedback_job_id(invoice_id))
        return "posted"

    async def _fail(self, invoice_id: uuid.UUID, code: str, detail: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "update invoice set status = 'failed', codes = array[$2], last_error = $3, updated_at = now() "
                "where id = $1",
                invoice_id,
                code,
                detail,
            )
            # One group for every posting failure: one ERP outage (or one fix on the ERP side) behind them all.
            await raise_exception(conn, code, "invoice", str(invoice_id), detail, ["retry"], group_key=code)
            await record_event(conn, "invoice.failed", "invoice", str(invoice_id), {"codes": [code]})

    async def notify_billed(self, invoice_id: uuid.UUID) -> int:
        """Tell the PSA which items are billed and the CRM what was invoiced on the contract."""
        async with self.db.connection() as conn:
            ctx = await store.posting_context(conn, invoice_id)
            if ctx is None or ctx["status"] != "posted":
                return 0
            items = await invoicing.billed_items(conn, invoice_id)
        billed = [BilledItem(i.subject_type, i.external_id, str(invoice_id)) for i in items]
        try:
            if billed:
                await self.psa.mark_billed(billed)
            await self.crm.report_billing(
                ctx["contract_external_id"], str(invoice_id), "posted", ctx["total"], ctx["currency"]
            )
        except BackendRejected as exc:
            # Not due any more until someone retries it: the sweeper must not repeat a refusal forever.
            async with self.db.transaction() as conn:
                await conn.execute("update invoice set feedback_due_at = null where id = $1", invoice_id)
                await raise_exception(
                    conn, "FEEDBACK_REJECTED", "invoice", str(invoice_id),
                    f"{exc.detail} ({exc.vendor_detail})" if exc.vendor_detail else exc.detail, ["retry"],
                )  # fmt: skip
            return 0
        async with self.db.transaction() as conn:
            await conn.execute("update invoice set feedback_done_at = now() where id = $1", invoice_id)
            await resolve_exceptions(conn, "invoice", str(invoice_id), ["FEEDBACK_REJECTED"])
        return len(billed)


def _billable(c: invoicing.Claimed) -> Billable:
    return Billable(
        id=str(c.id),
        kind=c.line_kind,
        amount=c.amount,
        quantity=c.quantity,
        rate=c.rate,
        role=c.role,
        category=c.category,
        milestone_key=c.milestone_key,
        milestone_name=c.milestone_name,
        is_adjustment=c.is_adjustment,
    )


def _posting(ctx: Any, lines: list[Any]) -> InvoicePosting:
    return InvoicePosting(
        external_id=str(ctx["id"]),
        kind=ctx["kind"],
        customer_external_id=ctx["customer_external_id"],
        subsidiary=ctx["legal_entity"],
        currency=ctx["currency"],
        invoice_date=ctx["invoice_date"],
        memo=f"{ctx['contract_number']} — psbridge invoice {ctx['id']}",
        lines=[
            PostingLine(
                line["description"],
                line["quantity"],
                line["unit_price"],
                line["net"],
                line["tax_rate"],
                line["tax"] if line["tax"] is not None else Decimal(0),
            )
            for line in lines
        ],
        net=ctx["net"],
        tax=ctx["tax"] or Decimal(0),
        total=ctx["total"] or ctx["net"],
    )
