"""NetSuite record mapping: credit memos carry positive amounts; ids come from Location."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from app.canonical import InvoicePosting, PostingLine
from system_apis.erp import mapping


def _posting(kind: str, net: str, tax: str) -> InvoicePosting:
    line = PostingLine("Milestone M1", D(1), D(net), D(net), D("0.08875"), D(tax))
    return InvoicePosting(
        "inv-1", kind, "ACME-001", "US01", "USD", date(2026, 3, 31), "memo", [line], D(net), D(tax), D(net) + D(tax)
    )


def test_invoice_record_shape() -> None:
    record = mapping.document_to_record(_posting("invoice", "100.00", "8.88"))
    assert record["entity"] == {"externalId": "ACME-001"} and record["tranDate"] == "2026-03-31"
    assert record["item"]["items"][0]["amount"] == "100.00" and record["item"]["items"][0]["tax"] == "8.88"
    assert mapping.record_type("credit_note") == "creditMemo"


def test_credit_memo_amounts_are_positive() -> None:
    record = mapping.document_to_record(_posting("credit_note", "-100.00", "-8.88"))
    assert record["item"]["items"][0]["amount"] == "100.00" and record["item"]["items"][0]["tax"] == "8.88"


def test_internal_id_from_location() -> None:
    assert mapping.id_from_location("http://erp/services/rest/record/v1/invoice/42") == "42"
    assert mapping.id_from_location(None) is None
