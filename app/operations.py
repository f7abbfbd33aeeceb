"""What ``psbridge billing-run`` and ``psbridge replay`` do (composition root: it builds the services).

Progress goes to stderr (a rich bar on a terminal, plain lines otherwise); the summary table is the
command's output, on stdout.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.access import Principal
from app.bootstrap import build_services
from app.settings import Settings
from process_apis.billing import queries
from process_apis.billing.commands import BillingRunIn
from process_apis.billing.views import InvoiceSummary
from process_apis.recovery.replay import ReplayKind

__all__ = ["BillingRunIn", "replay_work", "run_billing"]

ACTOR = "cli"
# Whoever runs the command on the server has the database already: the command sees everything.
OPERATOR = Principal(id=uuid.UUID(int=0), name=ACTOR, role="admin")


def _consoles() -> tuple[Console, Console]:
    """stdout for the tables, stderr for progress; piped output is wide enough for whole ids."""
    out = Console()
    return (out if out.is_terminal else Console(width=200)), Console(stderr=True)


def _progress(stderr: Console) -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=stderr,
    )  # fmt: skip


async def run_billing(settings: Settings, cmd: BillingRunIn) -> None:
    out, err = _consoles()
    async with build_services(settings) as services:
        with _progress(err) as progress:
            task = progress.add_task(f"billing run as of {cmd.as_of}", total=None)
            run = await services.billing.run_billing(cmd, ACTOR)
            progress.update(task, total=1, completed=1)
        async with services.db.connection() as conn:
            invoices = await queries.invoice_summaries(conn, run.invoice_ids, OPERATOR)
    table = Table(title=f"billing run {run.id} as of {cmd.as_of}")
    for column in ("status", "currency", "invoices", "net", "total"):
        table.add_column(column, justify="right" if column in ("invoices", "net", "total") else "left")
    groups: dict[tuple[str, str], list[InvoiceSummary]] = {}
    for invoice in invoices:
        groups.setdefault((invoice.status, invoice.currency), []).append(invoice)
    for (status, currency), members in sorted(groups.items()):
        net = sum((Decimal(str(m.net)) for m in members), Decimal(0))
        total = sum((Decimal(str(m.total if m.total is not None else m.net)) for m in members), Decimal(0))
        table.add_row(status, currency, str(len(members)), f"{net:,}", f"{total:,}")
    if not invoices:
        table.add_row("-", "-", "0", "0", "0")
    out.print(table)


async def replay_work(settings: Settings, kinds: Sequence[ReplayKind], dry_run: bool) -> None:
    out, err = _consoles()
    async with build_services(settings) as services:
        items = await services.replay.find(kinds)
        found = Counter(i.kind for i in items)
        done: Counter[str] = Counter()
        skipped: list[tuple[str, str, str]] = []
        if dry_run:
            listing = Table(title="would replay")
            for column in ("kind", "id", "state", "action"):
                listing.add_column(column)
            for item in items:
                listing.add_row(item.kind, str(item.subject_id), item.state, item.action)
            out.print(listing)
        else:
            with _progress(err) as progress:
                task = progress.add_task("replaying", total=len(items))
                for item in items:
                    reason = await services.replay.replay(item, ACTOR)
                    if reason is None:
                        done[item.kind] += 1
                    else:
                        skipped.append((item.kind, str(item.subject_id), reason))
                    progress.advance(task)
    summary = Table(title="replay (dry run)" if dry_run else "replay")
    for column in ("kind", "found", "would replay" if dry_run else "replayed", "skipped"):
        summary.add_column(column, justify="left" if column == "kind" else "right")
    for kind in kinds:
        went = found[kind] if dry_run else done[kind]
        summary.add_row(kind, str(found[kind]), str(went), str(sum(1 for s in skipped if s[0] == kind)))
    out.print(summary)
    for skipped_kind, subject, reason in skipped:
        err.print(f"skipped {skipped_kind} {subject}: {reason}")
