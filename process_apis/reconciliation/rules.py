"""What a reconciliation finds: pure, from psbridge's posted invoices and the ERP's documents."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from app.canonical import ErpDocument

__all__ = ["Mismatch", "PostedInvoice", "erp_posted_by_contract", "find_mismatches"]

MismatchKind = Literal["missing", "duplicate", "amount", "currency"]
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class PostedInvoice:
    id: uuid.UUID
    contract_id: uuid.UUID
    kind: str  # invoice | credit_note
    currency: str
    total: Decimal


@dataclass(frozen=True)
class Mismatch:
    invoice_id: uuid.UUID
    kind: MismatchKind
    detail: str


def find_mismatches(invoices: Sequence[PostedInvoice], documents: Sequence[ErpDocument]) -> list[Mismatch]:
    """Each posted invoice against the ERP record under its id (missing, another currency, another
    total), and any other ERP record that names it in its memo or tranId (keyed twice, by hand)."""
    ours = {str(i.id): i for i in invoices}
    keyed = {(d.kind, d.external_id): d for d in documents if d.external_id}
    found: list[Mismatch] = []
    for invoice in invoices:
        record = keyed.get((invoice.kind, str(invoice.id)))
        if record is None:
            found.append(Mismatch(invoice.id, "missing", f"the ERP holds no {invoice.kind} under this id"))
        elif record.currency != invoice.currency:
            found.append(Mismatch(invoice.id, "currency", f"ERP {record.currency}, psbridge {invoice.currency}"))
        elif record.total != invoice.total:
            found.append(Mismatch(invoice.id, "amount", f"ERP total {record.total}, psbridge {invoice.total}"))
    for record in documents:
        if record.external_id in ours:
            continue
        named = {m.lower() for m in _UUID.findall(f"{record.memo or ''} {record.tran_id or ''}")}
        for invoice_id in sorted(named & ours.keys()):
            detail = f"ERP {record.kind} {record.erp_id}, keyed without psbridge's id, names this invoice"
            found.append(Mismatch(ours[invoice_id].id, "duplicate", detail))
    return found


def erp_posted_by_contract(
    invoices: Sequence[PostedInvoice], documents: Sequence[ErpDocument]
) -> dict[uuid.UUID, Decimal]:
    """Net the ERP holds for each contract, from the records under psbridge's invoice ids."""
    contract_of = {(i.kind, str(i.id)): i.contract_id for i in invoices}
    posted: dict[uuid.UUID, Decimal] = {}
    for record in documents:
        contract_id = contract_of.get((record.kind, record.external_id or ""))
        if contract_id is not None and record.net is not None:
            posted[contract_id] = posted.get(contract_id, Decimal(0)) + record.net
    return posted
