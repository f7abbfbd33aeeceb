"""/system/v1: thin views onto each backend through its system API, in canonical words (for diagnosis)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.access import Right
from app.errors import NotFound
from app.http import Operation, endpoint, json_response, parse_path, parse_query
from app.responses import ApiModel


class ErpCustomerPath(BaseModel):
    external_id: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


class JurisdictionPath(BaseModel):
    code: Annotated[str, Field(pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$", description="e.g. US-NY, GB, DE")]


class ErpCustomerView(ApiModel):
    external_id: str
    name: str
    subsidiary: str = Field(description="The legal entity the ERP books it under")
    erp_id: str | None


class TaxJurisdictionView(ApiModel):
    code: str
    country: str
    rate: str = Field(pattern=r"^[0-9]+(\.[0-9]+)?$", description="Standard rate, e.g. 0.20")


async def get_erp_customer(request: Request) -> Response:
    external_id = parse_path(request, ErpCustomerPath).external_id
    await request.app.state.erp_governor.take()
    customer = await request.app.state.services.erp.find_customer(external_id)
    if customer is None:
        raise NotFound(f"the ERP has no customer {external_id}", "CUSTOMER_NOT_IN_ERP")
    return json_response(
        ErpCustomerView(
            external_id=customer.external_id,
            name=customer.name,
            subsidiary=customer.subsidiary,
            erp_id=customer.erp_id,
        )
    )


class ErpInvoicePath(BaseModel):
    external_id: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


class ErpInvoiceQuery(BaseModel):
    kind: Literal["invoice", "credit_note"] = "invoice"


class ErpInvoiceView(ApiModel):
    external_id: str = Field(description="psbridge's invoice id, under which it was posted")
    kind: Literal["invoice", "credit_note"]
    erp_id: str
    currency: str | None
    net: str | None = Field(description="As psbridge counts it: negative for a credit memo")
    total: str | None
    memo: str | None


async def get_erp_invoice(request: Request) -> Response:
    external_id = parse_path(request, ErpInvoicePath).external_id
    kind = parse_query(request, ErpInvoiceQuery).kind
    await request.app.state.erp_governor.take()
    found = await request.app.state.services.erp.find_document(kind, external_id)
    if found is None:
        raise NotFound(f"the ERP has no {kind} {external_id}", "INVOICE_NOT_IN_ERP")
    return json_response(
        ErpInvoiceView(
            external_id=external_id,
            kind=kind,
            erp_id=found.erp_id,
            currency=found.currency,
            net=None if found.net is None else format(found.net, "f"),
            total=None if found.total is None else format(found.total, "f"),
            memo=found.memo,
        )  # fmt: skip
    )


async def get_tax_jurisdiction(request: Request) -> Response:
    code = parse_path(request, JurisdictionPath).code
    jurisdiction = await request.app.state.services.tax.find_jurisdiction(code)
    if jurisdiction is None:
        raise NotFound(f"the tax API does not know {code}", "UNKNOWN_TAX_JURISDICTION")
    return json_response(
        TaxJurisdictionView(code=jurisdiction.code, country=jurisdiction.country, rate=format(jurisdiction.rate, "f"))
    )


routes: list[Route] = [
    endpoint(
        "/system/v1/erp/customers/{external_id}",
        "GET",
        get_erp_customer,
        Operation(
            "getErpCustomer",
            "An ERP customer master record, in canonical words",
            Right.READ_BACKENDS,
            path=ErpCustomerPath,
            response=ErpCustomerView,
            tags=("system",),
            errors={404: ("CUSTOMER_NOT_IN_ERP",), 503: ("BACKEND_UNAVAILABLE",)},
        ),
    ),
    endpoint(
        "/system/v1/erp/invoices/{external_id}",
        "GET",
        get_erp_invoice,
        Operation(
            "getErpInvoice",
            "An invoice or credit memo as the ERP holds it, looked up by psbridge's invoice id",
            Right.READ_BACKENDS,
            path=ErpInvoicePath,
            query=ErpInvoiceQuery,
            response=ErpInvoiceView,
            tags=("system",),
            errors={
                404: ("INVOICE_NOT_IN_ERP",),
                422: ("VALIDATION_FAILED",),
                429: ("RATE_LIMITED",),
                503: ("BACKEND_UNAVAILABLE",),
            },  # fmt: skip
        ),
    ),
    endpoint(
        "/system/v1/tax/jurisdictions/{code}",
        "GET",
        get_tax_jurisdiction,
        Operation(
            "getTaxJurisdiction",
            "A tax jurisdiction as the tax API knows it",
            Right.READ_BACKENDS,
            path=JurisdictionPath,
            response=TaxJurisdictionView,
            tags=("system",),
            errors={404: ("UNKNOWN_TAX_JURISDICTION",), 503: ("BACKEND_UNAVAILABLE",)},
        ),
    ),
]
