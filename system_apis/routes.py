"""/system/v1: thin, admin-only views onto each backend through its system API (for diagnosis)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.errors import NotFound
from app.http import Operation, endpoint, json_response


async def erp_customer(request: Request) -> Response:
    external_id = request.path_params["external_id"]
    customer = await request.app.state.services.erp.find_customer(external_id)
    if customer is None:
        raise NotFound(f"the ERP has no customer {external_id}", "CUSTOMER_NOT_IN_ERP")
    return json_response(
        {
            "external_id": customer.external_id,
            "name": customer.name,
            "subsidiary": customer.subsidiary,
            "erp_id": customer.erp_id,
        }
    )


async def tax_jurisdiction(request: Request) -> Response:
    code = request.path_params["code"]
    jurisdiction = await request.app.state.services.tax.find_jurisdiction(code)
    if jurisdiction is None:
        raise NotFound(f"the tax API does not know {code}", "UNKNOWN_TAX_JURISDICTION")
    return json_response(
        {"code": jurisdiction.code, "country": jurisdiction.country, "rate": format(jurisdiction.rate, "f")}
    )


routes: list[Route] = [
    endpoint(
        "/system/v1/erp/customers/{external_id}",
        "GET",
        erp_customer,
        Operation("An ERP customer master record, in canonical words", ("finance",), tags=("system",), errors=(404,)),
    ),
    endpoint(
        "/system/v1/tax/jurisdictions/{code}",
        "GET",
        tax_jurisdiction,
        Operation("A tax jurisdiction as the tax API knows it", ("finance",), tags=("system",), errors=(404,)),
    ),
]
