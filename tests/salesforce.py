"""Salesforce contract events as the CRM sends them: the API.md example, varied per test."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

__all__ = ["amendment_event", "encode", "line", "salesforce_event"]


def salesforce_event(**contract: Any) -> dict[str, Any]:
    """The API.md example with the demo's three milestones; ``contract`` replaces Contract fields."""
    event: dict[str, Any] = {
        "Contract": {
            "Id": "800XX0001",
            "ContractNumber": "SOW-2026-014",
            "Version__c": 1,
            "AccountId": "ACME-001",
            "Account": {"Name": "Acme Holdings"},
            "StartDate": "2026-01-05",
            "EndDate": "2026-12-18",
            "CurrencyIsoCode": "USD",
            "Status": "Activated",
            "CustomerSignedDate": "2026-01-02",
            "Legal_Entity__c": "US01",
            "Billing_Model__c": "Fixed Fee",
            "Total_Value__c": Decimal("300000.00"),
            "Time_Cap__c": None,
            "Tax_Jurisdiction__c": "US-NY",
            "Customer_Tax_Id__c": None,
            "Signed_Document_URI__c": "docs://sow/SOW-2026-014.pdf",
            "Signed_Document_SHA256__c": None,
        },
        "OpportunityLineItems": [
            line("M1", "Discovery", "100000.00", "2026-03-31", ""),
            line("M2", "Design", "120000.00", "2026-06-30", "M1"),
            line("M3", "Rollout", "80000.00", "2026-10-31", "M2"),
        ],
        "Rate_Cards__r": [{"Role__c": "consultant", "Rate__c": Decimal("200.00"), "Effective_From__c": "2026-01-05"}],
        "Expense_Allowances__r": [{"Category__c": "travel", "Cap__c": Decimal("15000.00")}],
    }
    event["Contract"].update(contract)
    return event


def line(key: str, name: str, price: str, due: str, depends: str | None) -> dict[str, Any]:
    return {
        "Milestone_Key__c": key,
        "Name": name,
        "TotalPrice": Decimal(price),
        "ServiceDate": due,
        "Depends_On__c": depends,
    }


def encode(event: Any) -> bytes:
    """JSON as Salesforce writes it: Decimals as bare numbers with their exact text."""

    def number(value: Any) -> str:
        if isinstance(value, Decimal):
            return f"@@number:{value:f}@@"
        raise TypeError(type(value))

    return re.sub(r'"@@number:([-0-9.]+)@@"', r"\1", json.dumps(event, default=number)).encode()


def amendment_event(**contract: Any) -> dict[str, Any]:
    """Change order CO-7 as Salesforce sends it: the whole new state at version 2."""
    event = salesforce_event(
        Version__c=2,
        Effective_Date__c="2026-06-01",
        Amendment_Reason__c="CO-7 scope extension",
        Total_Value__c=Decimal("360000.00"),
    )
    event["OpportunityLineItems"].append(line("M4", "Rollout wave 2", "60000.00", "2026-11-30", "M3"))
    event["Expense_Allowances__r"] = [{"Category__c": "travel", "Cap__c": Decimal("20000.00")}]
    event["Contract"].update(contract)
    return event
