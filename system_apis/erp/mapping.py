"""NetSuite REST record JSON <-> canonical objects (pure)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.canonical import ErpCustomer, ErpDocument, InvoicePosting, ProjectPlan
from app.money import to_str

RECORD_TYPES = {"invoice": "invoice", "credit_note": "creditMemo"}


def record_type(kind: str) -> str:
    return RECORD_TYPES[kind]


def customer_from_record(record: dict[str, Any]) -> ErpCustomer:
    subsidiary = record.get("subsidiary")
    if isinstance(subsidiary, dict):  # NetSuite references may come expanded
        subsidiary = subsidiary.get("refName") or subsidiary.get("id")
    return ErpCustomer(
        external_id=str(record["externalId"]),
        name=str(record.get("companyName") or ""),
        subsidiary=str(subsidiary or ""),
        erp_id=str(record.get("id")) if record.get("id") is not None else None,
    )


def document_to_record(posting: InvoicePosting) -> dict[str, Any]:
    # Credit memos carry positive amounts in NetSuite; the record type says it is a credit.
    sign = Decimal(-1) if posting.kind == "credit_note" else Decimal(1)
    return {
        "entity": {"externalId": posting.customer_external_id},
        "subsidiary": posting.subsidiary,
        "currency": posting.currency,
        "tranDate": posting.invoice_date.isoformat(),
        "memo": posting.memo,
        "item": {
            "items": [
                {
                    "description": line.description,
                    "quantity": to_str(line.quantity),
                    "rate": to_str(line.unit_price),
                    "amount": to_str(sign * line.net),
                    "taxRate": to_str(line.tax_rate),
                    "tax": to_str(sign * line.tax),
                }
                for line in posting.lines
            ]
        },
    }


def plan_to_job_record(plan: ProjectPlan) -> dict[str, Any]:
    return {
        "companyName": f"{plan.contract_number} {plan.customer_name}",
        "customer": {"externalId": plan.customer_external_id},
        "subsidiary": plan.legal_entity,
        "currency": plan.currency,
        "startDate": plan.start_date.isoformat(),
        "projectedEndDate": plan.end_date.isoformat(),
        "billingType": plan.billing_model,
        "planVersion": plan.version,
        "budget": to_str(plan.budget),
        "billingSchedule": [
            {
                "milestone": m.key,
                "name": m.name,
                "amount": to_str(m.amount),
                "dueDate": m.due_date.isoformat() if m.due_date else None,
                "dependsOn": m.depends_on,
            }
            for m in plan.milestones
        ],
    }


def id_from_location(location: str | None) -> str | None:
    return location.rstrip("/").rsplit("/", 1)[-1] if location else None


def document_from_record(kind: str, record: dict[str, Any]) -> ErpDocument:
    """A transaction record as psbridge counts it: a credit memo's positive amounts become negative."""
    sign = Decimal(-1) if kind == "credit_note" else Decimal(1)

    def amount(key: str) -> Decimal | None:
        value = record.get(key)
        return None if value is None else sign * Decimal(str(value))

    currency = record.get("currency")
    return ErpDocument(
        kind=kind,
        erp_id=str(record.get("id")),
        external_id=record.get("externalId") or None,
        net=amount("subtotal"),
        total=amount("total"),
        currency=currency if isinstance(currency, str) else None,
        memo=record.get("memo"),
        tran_id=record.get("tranId"),
    )
