"""ERP (NetSuite-shaped) records: customers, invoices, credit memos, jobs."""

from __future__ import annotations

from typing import Any

import httpx

ERP = "/erp/services/rest/record/v1"


def invoice_body(amounts: list[tuple[str, str]], tran_date: str = "2026-03-31") -> dict[str, Any]:
    return {
        "entity": {"externalId": "ACME-001"},
        "subsidiary": "US01",
        "currency": "USD",
        "tranDate": tran_date,
        "memo": "March services",
        "subtotal": "999.99",  # client totals are ignored, as by NetSuite
        "total": "999.99",
        "item": {
            "items": [
                {
                    "description": f"line {i}",
                    "quantity": "1",
                    "rate": net,
                    "amount": net,
                    "taxRate": "0.08875",
                    "tax": tax,
                }
                for i, (net, tax) in enumerate(amounts)
            ]
        },
    }


async def put_customer(client: httpx.AsyncClient, external_id: str = "ACME-001") -> httpx.Response:
    return await client.put(
        f"{ERP}/customer/eid:{external_id}", json={"companyName": "Acme Corp", "subsidiary": "US01"}
    )


async def test_customer_put_then_get(client: httpx.AsyncClient) -> None:
    created = await put_customer(client)
    assert created.status_code == 204
    assert created.headers["location"] == f"http://sandbox{ERP}/customer/1"

    got = await client.get(f"{ERP}/customer/eid:ACME-001")
    assert got.status_code == 200
    assert got.json() == {
        "id": "1",
        "externalId": "ACME-001",
        "companyName": "Acme Corp",
        "subsidiary": "US01",
    }
    by_internal_id = await client.get(f"{ERP}/customer/1")
    assert by_internal_id.json() == got.json()


async def test_customer_upsert_keeps_internal_id(client: httpx.AsyncClient) -> None:
    await put_customer(client)
    await put_customer(client, "OTHER")
    again = await client.put(f"{ERP}/customer/eid:ACME-001", json={"companyName": "Acme Inc", "subsidiary": "UK01"})
    assert again.headers["location"].endswith("/customer/1")
    assert (await client.get(f"{ERP}/customer/eid:ACME-001")).json()["subsidiary"] == "UK01"


async def test_unknown_customer_is_a_netsuite_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{ERP}/customer/eid:NOPE")
    assert response.status_code == 404
    body = response.json()
    assert body["status"] == 404
    assert body["o:errorDetails"][0]["o:errorCode"] == "NONEXISTENT_ID"


async def test_customer_requires_subsidiary(client: httpx.AsyncClient) -> None:
    response = await client.put(f"{ERP}/customer/eid:X", json={"companyName": "X"})
    assert response.status_code == 400
    assert response.json()["o:errorDetails"][0]["o:errorCode"] == "USER_ERROR"


async def test_invoice_upsert_keeps_id_and_recomputes_totals(client: httpx.AsyncClient) -> None:
    await put_customer(client)
    first = await client.put(f"{ERP}/invoice/eid:INV-1", json=invoice_body([("1000.00", "88.75")]))
    assert first.status_code == 204
    assert first.headers["location"] == f"http://sandbox{ERP}/invoice/1"

    record = (await client.get(f"{ERP}/invoice/eid:INV-1")).json()
    assert (record["id"], record["externalId"]) == ("1", "INV-1")
    assert (record["subtotal"], record["taxTotal"], record["total"]) == ("1000.00", "88.75", "1088.75")
    assert record["entity"] == {"externalId": "ACME-001", "id": "1"}
    assert record["tranDate"] == "2026-03-31"
    assert record["item"]["items"][0]["amount"] == "1000.00"

    replaced = await client.put(
        f"{ERP}/invoice/eid:INV-1", json=invoice_body([("1000.00", "88.75"), ("-250.50", "-22.23")])
    )
    assert replaced.headers["location"] == first.headers["location"]
    record = (await client.get(f"{ERP}/invoice/1")).json()
    assert (record["subtotal"], record["taxTotal"], record["total"]) == ("749.50", "66.52", "816.02")
    assert len(record["item"]["items"]) == 2


async def test_invoice_list_pages_in_creation_order(client: httpx.AsyncClient) -> None:
    await put_customer(client)
    for n in range(1, 6):
        await client.put(f"{ERP}/invoice/eid:INV-{n}", json=invoice_body([(f"{n}.00", "0.00")]))
    # Replacing INV-2 keeps its place in the list.
    await client.put(f"{ERP}/invoice/eid:INV-2", json=invoice_body([("20.00", "0.00")]))

    page = (await client.get(f"{ERP}/invoice", params={"limit": 2, "offset": 0})).json()
    assert [r["externalId"] for r in page["items"]] == ["INV-1", "INV-2"]
    assert page["items"][1]["total"] == "20.00"
    assert (page["count"], page["offset"], page["totalResults"], page["hasMore"]) == (2, 0, 5, True)

    last = (await client.get(f"{ERP}/invoice", params={"limit": 2, "offset": 4})).json()
    assert [r["externalId"] for r in last["items"]] == ["INV-5"]
    assert (last["count"], last["hasMore"]) == (1, False)

    everything = (await client.get(f"{ERP}/invoice")).json()
    assert everything["count"] == 5


async def test_invoice_list_rejects_bad_paging(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{ERP}/invoice", params={"limit": 0})).status_code == 400
    assert (await client.get(f"{ERP}/invoice", params={"offset": "x"})).status_code == 400


async def test_credit_memo_behaves_like_invoice_in_its_own_store(client: httpx.AsyncClient) -> None:
    await put_customer(client)
    body = invoice_body([("-500.00", "-95.00")])
    response = await client.put(f"{ERP}/creditMemo/eid:CN-1", json=body)
    assert response.status_code == 204
    assert response.headers["location"].endswith("/creditMemo/1")

    record = (await client.get(f"{ERP}/creditMemo/eid:CN-1")).json()
    assert (record["subtotal"], record["taxTotal"], record["total"]) == ("-500.00", "-95.00", "-595.00")
    assert (await client.get(f"{ERP}/creditMemo")).json()["totalResults"] == 1
    assert (await client.get(f"{ERP}/invoice")).json()["totalResults"] == 0
    assert (await client.get(f"{ERP}/invoice/eid:CN-1")).status_code == 404


async def test_invoice_for_unknown_customer_is_invalid_key(client: httpx.AsyncClient) -> None:
    response = await client.put(f"{ERP}/invoice/eid:INV-1", json=invoice_body([("1.00", "0.00")]))
    assert response.status_code == 400
    assert response.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_KEY_OR_REF"
    assert (await client.get(f"{ERP}/invoice/eid:INV-1")).status_code == 404


async def test_invoice_validation_errors_are_400s(client: httpx.AsyncClient) -> None:
    await put_customer(client)
    no_date = invoice_body([("1.00", "0.00")])
    del no_date["tranDate"]
    float_money = invoice_body([("1.00", "0.00")])
    float_money["item"]["items"][0]["amount"] = 1.0
    for body in (no_date, float_money, {"entity": {"externalId": "ACME-001"}, "tranDate": "2026-03-31"}):
        response = await client.put(f"{ERP}/invoice/eid:INV-1", json=body)
        assert response.status_code == 400, body
        assert response.json()["o:errorDetails"][0]["o:errorCode"] == "USER_ERROR"

    bad_json = await client.put(f"{ERP}/invoice/eid:INV-1", content=b"{not json")
    assert bad_json.status_code == 400
    assert bad_json.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_CONTENT"


async def test_closed_period_refuses_invoices_dated_in_it(client: httpx.AsyncClient) -> None:
    await put_customer(client)
    await client.post("/__sandbox/faults", json={"erp": {"closed_periods": ["2026-01"]}})

    closed = await client.put(f"{ERP}/invoice/eid:INV-1", json=invoice_body([("1.00", "0.00")], "2026-01-31"))
    assert closed.status_code == 400
    assert closed.json()["o:errorDetails"][0]["o:errorCode"] == "PERIOD_CLOSED"
    memo = await client.put(f"{ERP}/creditMemo/eid:CN-1", json=invoice_body([("-1.00", "0.00")], "2026-01-02"))
    assert memo.status_code == 400

    open_period = await client.put(f"{ERP}/invoice/eid:INV-2", json=invoice_body([("1.00", "0.00")], "2026-02-01"))
    assert open_period.status_code == 204


async def test_job_record_roundtrip(client: httpx.AsyncClient) -> None:
    plan = {"projectName": "ERP rollout", "billingSchedule": [{"milestone": "M1", "amount": "100000.00"}]}
    response = await client.put(f"{ERP}/job/eid:CTR-1", json=plan)
    assert response.status_code == 204
    assert response.headers["location"].endswith("/job/1")
    assert (await client.get(f"{ERP}/job/eid:CTR-1")).json() == {**plan, "id": "1", "externalId": "CTR-1"}


async def test_unknown_record_type_and_route_are_json_404s(client: httpx.AsyncClient) -> None:
    for path in (f"{ERP}/salesOrder/eid:X", "/erp/nothing/here"):
        response = await client.get(path)
        assert response.status_code == 404
        assert "o:errorDetails" in response.json()
