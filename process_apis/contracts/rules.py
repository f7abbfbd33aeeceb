"""Pure contract decisions: activation governance and the shape of a valid plan."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

import orjson

from app.canonical import ErpCustomer


@dataclass(frozen=True)
class Finding:
    code: str
    detail: str
    cause: str | None = None  # what one fix repairs (a customer, an entity): contracts sharing it are grouped

    @property
    def group_key(self) -> str:
        return f"{self.code}:{self.cause}" if self.cause else self.code


@dataclass(frozen=True)
class GovernanceFacts:
    """What activation governance looks at, from a request or from the stored contract."""

    status: str
    customer_external_id: str
    legal_entity: str
    currency: str
    jurisdiction: str
    billing_model: str
    total_value: Decimal | None
    milestone_amounts: list[Decimal]


@dataclass(frozen=True)
class LegalEntityFacts:
    code: str
    country: str
    allowed_currencies: list[str]


def governance_findings(
    *,
    customer_external_id: str,
    erp_customer: ErpCustomer | None,
    legal_entity_code: str,
    legal_entity: LegalEntityFacts | None,
    currency: str,
    jurisdiction: str,
    jurisdiction_known: bool,
) -> list[Finding]:
    """Every failing activation check, all at once (docs/billing.md, "Contracts and activation governance")."""
    findings = []
    if erp_customer is None:
        findings.append(
            Finding("CUSTOMER_NOT_IN_ERP", f"customer {customer_external_id} is not in the ERP", customer_external_id)
        )
    elif erp_customer.subsidiary != legal_entity_code:
        findings.append(
            Finding(
                "LEGAL_ENTITY_MISMATCH",
                f"ERP customer {customer_external_id} belongs to subsidiary {erp_customer.subsidiary}, "
                f"not {legal_entity_code}",
                customer_external_id,
            )
        )
    if legal_entity is None:
        findings.append(
            Finding("UNKNOWN_LEGAL_ENTITY", f"legal entity {legal_entity_code} is not configured", legal_entity_code)
        )
    elif currency not in legal_entity.allowed_currencies:
        findings.append(
            Finding(
                "CURRENCY_NOT_ALLOWED",
                f"{legal_entity_code} may invoice in {', '.join(legal_entity.allowed_currencies)}, not {currency}",
                f"{legal_entity_code}:{currency}",
            )
        )
    if not jurisdiction_known:
        findings.append(Finding("UNKNOWN_TAX_JURISDICTION", f"the tax API does not know {jurisdiction}", jurisdiction))
    return findings


def milestone_sum_finding(billing_model: str, total_value: Decimal | None, amounts: list[Decimal]) -> Finding | None:
    if billing_model != "fixed_fee":
        return None
    planned = sum(amounts, Decimal(0))
    if planned != total_value:
        return Finding(
            "MILESTONES_DO_NOT_SUM", f"milestones sum to {planned}, the contract's total_value is {total_value}"
        )
    return None


def _canonical(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")  # "300000.00" and "300000" are the same amount
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def payload_hash(payload: dict[str, object]) -> str:
    """A stable digest of a request body, to tell a resend from a change."""
    canonical = _canonical(payload)
    return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()
