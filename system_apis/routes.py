"""/system/v1: thin views onto each backend through its system API, in canonical words (for diagnosis)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.access import Right
from app.errors import NotFound
from app.http import Operation, endpoint, json_response, parse_path
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
