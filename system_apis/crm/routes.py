"""/system/v1/crm/{vendor}/events: a CRM sends a contract as it holds it; psbridge maps and takes it.

The route reads the raw bytes (the mapping needs amounts as the JSON text, not as floats, and
the intake keeps the payload byte for byte), maps them through the vendor's mapping file, and
hands the result to the intake port. The body model below documents the Salesforce shape; it
never parses a request.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, RootModel, WithJsonSchema
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.access import Right
from app.canonical.intake import (
    AmendmentApplied,
    ContractIntake,
    ContractRegistered,
    InboundPayload,
    MappingFailure,
)
from app.errors import DomainError, NotFound
from app.http import Operation, endpoint, json_response, parse_path, principal_of
from app.types import BusinessDate, CurrencyCode
from system_apis.crm.port import CrmEvents

__all__ = ["MappingFailed", "routes"]

# Salesforce sends currency fields as JSON numbers; the mapping reads their exact text.
_Number = Annotated[
    Decimal,
    WithJsonSchema({"type": "number", "description": "A currency field as Salesforce sends it: its text is kept"}),
]
_Text = Annotated[str, Field(min_length=1, max_length=300)]


class _SalesforceModel(BaseModel):
    model_config = ConfigDict(extra="allow")  # Salesforce adds fields (attributes, Status, ...) psbridge ignores


class SalesforceAccount(_SalesforceModel):
    Name: _Text


class SalesforceContract(_SalesforceModel):
    Id: _Text = Field(description="The contract's external_id")
    ContractNumber: _Text
    Version__c: int = Field(ge=1, le=100_000, description="1 registers the contract; a higher one amends it")
    AccountId: _Text = Field(description="The customer's external_id")
    Account: SalesforceAccount
    StartDate: BusinessDate
    EndDate: BusinessDate
    CurrencyIsoCode: CurrencyCode
    CustomerSignedDate: BusinessDate | None = Field(default=None, description="signed_at is 00:00:00Z that day")
    Legal_Entity__c: _Text
    Billing_Model__c: Literal["Fixed Fee", "Time and Materials"]
    Total_Value__c: _Number | None = None
    Time_Cap__c: _Number | None = None
    Tax_Jurisdiction__c: Annotated[str, Field(pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")]
    Customer_Tax_Id__c: str | None = None
    Signed_Document_URI__c: str | None = None
    Signed_Document_SHA256__c: str | None = None
    Effective_Date__c: BusinessDate | None = Field(default=None, description="An amendment's: when it applies")
    Amendment_Reason__c: str | None = None


class SalesforceLineItem(_SalesforceModel):
    Milestone_Key__c: _Text
    Name: _Text
    TotalPrice: _Number
    ServiceDate: BusinessDate | None = None
    Depends_On__c: str | None = Field(default=None, description="Milestone keys separated by ';'")


class SalesforceRateCard(_SalesforceModel):
    Role__c: _Text
    Rate__c: _Number
    Effective_From__c: BusinessDate


class SalesforceExpenseAllowance(_SalesforceModel):
    Category__c: _Text
    Cap__c: _Number | None = None


# Whole numbers: a float literal here would print as 300000.0 in the document.
_EXAMPLE: dict[str, JsonValue] = {
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
        "Total_Value__c": 300000,
        "Time_Cap__c": None,
        "Tax_Jurisdiction__c": "US-NY",
        "Customer_Tax_Id__c": None,
        "Signed_Document_URI__c": "docs://sow/SOW-2026-014.pdf",
        "Signed_Document_SHA256__c": None,
    },
    "OpportunityLineItems": [
        {
            "Milestone_Key__c": "M1",
            "Name": "Discovery",
            "TotalPrice": 300000,
            "ServiceDate": "2026-03-31",
            "Depends_On__c": "",
        }
    ],
    "Rate_Cards__r": [{"Role__c": "consultant", "Rate__c": 200, "Effective_From__c": "2026-01-05"}],
    "Expense_Allowances__r": [{"Category__c": "travel", "Cap__c": 15000}],
}


class SalesforceContractEvent(_SalesforceModel):
    """A Salesforce contract event: the whole contract at one version (mappings/salesforce.toml)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_EXAMPLE]})

    Contract: SalesforceContract
    OpportunityLineItems: list[SalesforceLineItem] = Field(default_factory=list, description="The milestones")
    Rate_Cards__r: list[SalesforceRateCard] = Field(default_factory=list)
    Expense_Allowances__r: list[SalesforceExpenseAllowance] = Field(default_factory=list)


class CrmEventAnswer(RootModel[ContractRegistered | AmendmentApplied]):
    """The canonical answer: the registration's for version 1, the amendment's for a later one."""


class VendorPath(BaseModel):
    vendor: Annotated[
        str,
        Field(
            pattern=r"^[a-z][a-z0-9_]{0,39}$", description="A CRM with a mapping: salesforce", examples=["salesforce"]
        ),
    ]


class MappingFailed(DomainError):
    def __init__(self, failure: MappingFailure, exception_id: uuid.UUID, event_id: uuid.UUID) -> None:
        super().__init__(
            detail=f"{failure.detail}; the payload is kept (event {event_id}) for a retry of exception {exception_id}",
            code="MAPPING_FAILED",
            status=422,
            title="Unprocessable content",
            errors=failure.errors,
            extra={"exception_id": str(exception_id), "event_id": str(event_id)},
        )


async def receive_crm_event(request: Request) -> Response:
    vendor = parse_path(request, VendorPath).vendor
    intake: ContractIntake = request.app.state.services.intake
    events: CrmEvents = request.app.state.services.intake.events  # the mapping a replay will use, too
    if vendor not in events.vendors():
        raise NotFound(f"psbridge has no mapping for CRM vendor {vendor!r}", "UNKNOWN_VENDOR")
    raw = await request.body()
    mapped = events.read_contract_event(vendor, raw)
    payload = InboundPayload("crm", vendor, raw, mapped.subject)
    if isinstance(mapped.result, MappingFailure):
        exception_id = await intake.reject_payload(payload, mapped.result, principal_of(request))
        raise MappingFailed(mapped.result, exception_id, payload.id)
    result = await intake.receive_contract(payload, mapped.result, principal_of(request))
    location = {"Location": f"/process/v1/contracts/{result.answer.id}"}
    return json_response(result.answer, 201 if result.created else 200, location)


routes: list[Route] = [
    endpoint(
        "/system/v1/crm/{vendor}/events",
        "POST",
        receive_crm_event,
        Operation(
            "receiveCrmEvent",
            "Take a contract as the CRM sends it (new contract, or an amendment by a higher version)",
            Right.WRITE_CONTRACTS,
            body=SalesforceContractEvent,
            response=CrmEventAnswer,
            path=VendorPath,
            status=201,
            other_statuses={200: "The same state again (a redelivered event): nothing changed"},
            tags=("system",),
            links={"getContract": {"contract_id": "$response.body#/id"}},
            errors={
                403: ("FIELD_NOT_OWNED",),
                404: ("UNKNOWN_VENDOR",),
                409: ("AMENDMENT_REQUIRED", "VERSION_CONFLICT", "CONTRACT_BLOCKED"),
                422: (
                    "MAPPING_FAILED",
                    "INVALID_EFFECTIVE_DATE",
                    "INVALID_END_DATE",
                    "NOT_AMENDABLE",
                    "UNKNOWN_MILESTONE",
                    "DUPLICATE_MILESTONE",
                    "MILESTONE_ACCEPTED",
                    "MILESTONES_DO_NOT_SUM",
                ),
                503: ("BACKEND_UNAVAILABLE",),
            },
        ),
    ),
]
