"""NetSuite-shaped ERP: REST record service under /services/rest/record/v1.

Records are upserted by external id (`PUT .../{type}/eid:{externalId}`, 204 +
Location), read by external or internal id, and listed with limit/offset.
Transactions (invoice, creditMemo) get their totals computed here, ignoring any
the client sent, the way NetSuite does.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from sandbox._http import ApiError, error_handlers, parse_date, parse_decimal, read_object
from sandbox.middleware import wrap_backend
from sandbox.state import Record, SandboxState

__all__ = ["create_app", "netsuite_error"]

BASE = "/services/rest/record/v1"
TRANSACTIONS = frozenset({"invoice", "creditMemo"})
RECORD_TYPES = TRANSACTIONS | {"customer", "job"}
MAX_PAGE = 1000

_TITLES = {
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
# NetSuite answers every input problem with a 400 and its own codes.
_NETSUITE_CODES = {"INVALID_JSON": "INVALID_CONTENT", "VALIDATION_ERROR": "USER_ERROR"}


def netsuite_error(status: int, code: str, detail: str) -> Response:
    if status == 422:
        status = 400
    body = {
        "type": f"https://www.rfc-editor.org/rfc/rfc9110.html#status.{status}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "o:errorDetails": [{"detail": detail, "o:errorCode": _NETSUITE_CODES.get(code, code)}],
    }
    return JSONResponse(body, status_code=status)


def create_app(state: SandboxState) -> ASGIApp:
    erp = _Erp(state)
    routes = [
        Route(BASE + "/{record_type}/eid:{external_id}", erp.put, methods=["PUT"]),
        Route(BASE + "/{record_type}/eid:{external_id}", erp.get_by_external_id, methods=["GET"]),
        Route(BASE + "/{record_type}/eid:{external_id}", erp.delete, methods=["DELETE"]),
        Route(BASE + "/{record_type}/{internal_id}", erp.get_by_internal_id, methods=["GET"]),
        Route(BASE + "/{record_type}", erp.list, methods=["GET"]),
        Route(BASE + "/{record_type}", erp.create, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers=error_handlers(netsuite_error))
    return wrap_backend(app, "erp", state, netsuite_error)


class _Erp:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def put(self, request: Request) -> Response:
        record_type = _record_type(request)
        external_id = request.path_params["external_id"]
        body = await read_object(request)
        fields = body  # a job record is any JSON object psbridge pushes
        if record_type in TRANSACTIONS:
            fields = self._transaction_fields(body)
        elif record_type == "customer":
            fields = _customer_fields(body)
        record = self._upsert(record_type, external_id, fields)
        # The Location points at the internal id, as NetSuite's does.
        location = request.url.replace(path=f"{request.url.path.rsplit('/', 1)[0]}/{record['id']}", query="")
        return Response(status_code=204, headers={"Location": str(location)})

    async def create(self, request: Request) -> Response:
        """An invoice or credit memo keyed by hand, without an external id (what a person in the ERP does)."""
        record_type = _record_type(request)
        if record_type not in TRANSACTIONS:
            raise ApiError(405, "METHOD_NOT_ALLOWED", f"{record_type} records are created by external id")
        fields = self._transaction_fields(await read_object(request))
        erp = self.state.erp
        internal_id = str(erp.next_id.get(record_type, 1))
        erp.next_id[record_type] = int(internal_id) + 1
        key = f"id:{internal_id}"  # no external id: the record is known only by its internal one
        erp.external_by_id.setdefault(record_type, {})[internal_id] = key
        erp.records.setdefault(record_type, {})[key] = {**fields, "id": internal_id, "externalId": None}
        location = request.url.replace(path=f"{request.url.path}/{internal_id}", query="")
        return Response(status_code=204, headers={"Location": str(location)})

    async def delete(self, request: Request) -> Response:
        record_type = _record_type(request)
        external_id = request.path_params["external_id"]
        record = self._get(record_type, external_id)
        del self.state.erp.records[record_type][external_id]
        self.state.erp.external_by_id.get(record_type, {}).pop(record["id"], None)
        return Response(status_code=204)

    async def get_by_external_id(self, request: Request) -> Response:
        record_type = _record_type(request)
        return JSONResponse(self._get(record_type, request.path_params["external_id"]))

    async def get_by_internal_id(self, request: Request) -> Response:
        record_type = _record_type(request)
        internal_id = request.path_params["internal_id"]
        external_id = self.state.erp.external_by_id.get(record_type, {}).get(internal_id)
        if external_id is None:
            raise _not_found(record_type, internal_id)
        return JSONResponse(self._get(record_type, external_id))

    async def list(self, request: Request) -> Response:
        records = list(self.state.erp.records.get(_record_type(request), {}).values())
        limit = _int_param(request, "limit", MAX_PAGE, 1, MAX_PAGE)
        offset = _int_param(request, "offset", 0, 0, None)
        page = records[offset : offset + limit]
        return JSONResponse(
            {
                "items": page,
                "count": len(page),
                "offset": offset,
                "totalResults": len(records),
                "hasMore": offset + len(page) < len(records),
            }
        )

    def _get(self, record_type: str, external_id: str) -> Record:
        record = self.state.erp.records.get(record_type, {}).get(external_id)
        if record is None:
            raise _not_found(record_type, f"eid:{external_id}")
        return record

    def _upsert(self, record_type: str, external_id: str, fields: dict[str, Any]) -> Record:
        erp = self.state.erp
        records = erp.records.setdefault(record_type, {})
        existing = records.get(external_id)
        if existing is not None:
            internal_id = existing["id"]
        else:
            internal_id = str(erp.next_id.get(record_type, 1))
            erp.next_id[record_type] = int(internal_id) + 1
            erp.external_by_id.setdefault(record_type, {})[internal_id] = external_id
        record = {**fields, "id": internal_id, "externalId": external_id}
        records[external_id] = record
        return record

    def _transaction_fields(self, body: dict[str, Any]) -> dict[str, Any]:
        tran_date = parse_date(body.get("tranDate"), "tranDate")
        entity = self._entity(body.get("entity"))
        amounts, taxes = _line_amounts(body.get("item"))
        period = tran_date.strftime("%Y-%m")
        if period in self.state.faults["erp"].closed_periods:
            raise ApiError(
                400,
                "PERIOD_CLOSED",
                f"The accounting period {period} is closed; tranDate {tran_date} cannot be posted.",
            )
        subtotal, tax_total = sum(amounts, Decimal(0)), sum(taxes, Decimal(0))
        fields = {key: value for key, value in body.items() if key not in ("subtotal", "taxTotal", "total")}
        fields.update(entity=entity, subtotal=str(subtotal), taxTotal=str(tax_total), total=str(subtotal + tax_total))
        return fields

    def _entity(self, ref: Any) -> dict[str, Any]:
        """Resolves `{"externalId"}` or `{"id"}` to an existing customer, adding both ids."""
        customers = self.state.erp.records.get("customer", {})
        customer: Record | None = None
        if isinstance(ref, dict) and isinstance(ref.get("externalId"), str):
            customer = customers.get(ref["externalId"])
        elif isinstance(ref, dict) and isinstance(ref.get("id"), str):
            external_id = self.state.erp.external_by_id.get("customer", {}).get(ref["id"])
            customer = customers.get(external_id) if external_id is not None else None
        if customer is None:
            raise ApiError(400, "INVALID_KEY_OR_REF", f"Invalid entity reference key {ref!r}: no such customer.")
        return {**ref, "id": customer["id"], "externalId": customer["externalId"]}


def _customer_fields(body: dict[str, Any]) -> dict[str, Any]:
    for key in ("companyName", "subsidiary"):
        if not isinstance(body.get(key), str) or not body[key].strip():
            raise ApiError(400, "USER_ERROR", f"Please enter value(s) for: {key}")
    return body


def _line_amounts(item: Any) -> tuple[list[Decimal], list[Decimal]]:
    if not isinstance(item, dict) or not isinstance(item.get("items"), list):
        raise ApiError(400, "USER_ERROR", "item: required object with an `items` list")
    amounts: list[Decimal] = []
    taxes: list[Decimal] = []
    for index, line in enumerate(item["items"]):
        if not isinstance(line, dict):
            raise ApiError(400, "USER_ERROR", f"item.items[{index}]: must be an object")
        amounts.append(parse_decimal(line.get("amount"), f"item.items[{index}].amount"))
        # A line without tax (a non-taxable item) counts as zero tax.
        taxes.append(parse_decimal(line.get("tax", "0"), f"item.items[{index}].tax"))
    return amounts, taxes


def _record_type(request: Request) -> str:
    record_type: str = request.path_params["record_type"]
    if record_type not in RECORD_TYPES:
        raise ApiError(404, "INVALID_RCRD_TYPE", f"Record type '{record_type}' does not exist.")
    return record_type


def _not_found(record_type: str, key: str) -> ApiError:
    return ApiError(
        404,
        "NONEXISTENT_ID",
        f"The record instance does not exist. Provide a valid record instance ID ({record_type} {key}).",
    )


def _int_param(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ApiError(400, "INVALID_PARAMETER", f"{name}: must be an integer {bound}")
    return int(raw)
