"""The ERP's system API routes (/system/v1/erp/...): canonical views of what the ERP holds, behind
one budget shared by every caller and process (429 with Retry-After over it), so internal callers
reach the ERP through the same governor as the workers' throttle."""

from __future__ import annotations

import uuid

from tests.factories import accepted_m1, auth
from tests.integration.test_http_contract import app_client
from tests.work import billing_run


async def test_an_invoice_is_looked_up_by_psbridges_id(api, keys, run_jobs):
    await accepted_m1(api, keys)
    [invoice] = await billing_run(api, keys, "2026-03-31")
    await run_jobs()
    posted = (await api.get(f"/process/v1/invoices/{invoice['id']}", headers=auth(keys["finance"]))).json()
    found = await api.get(f"/system/v1/erp/invoices/{invoice['id']}", headers=auth(keys["finance"]))
    assert found.status_code == 200, found.text
    assert found.json() == {
        "external_id": invoice["id"], "kind": "invoice", "erp_id": posted["erp_ref"], "currency": "USD",
        "net": "100000.00", "total": "108875.00", "memo": found.json()["memo"],
    }  # fmt: skip
    assert invoice["id"] in found.json()["memo"]
    missing = await api.get(f"/system/v1/erp/invoices/{uuid.uuid4()}?kind=credit_note", headers=auth(keys["finance"]))
    assert missing.status_code == 404 and missing.json()["code"] == "INVOICE_NOT_IN_ERP"
    bad = await api.get(f"/system/v1/erp/invoices/{invoice['id']}?kind=bill", headers=auth(keys["finance"]))
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["query", "kind"]


async def test_every_caller_shares_one_erp_budget(settings, sandbox_transport, services, keys):
    tight = settings.model_copy(
        update={"erp_system_rate_limit": "3/minute", "queue_name": f"psbridge:test:{uuid.uuid4().hex[:8]}"}
    )
    async with app_client(tight, sandbox_transport) as client:
        for path, key in (("customers/ACME-001", "finance"), ("invoices/X-1", "admin"), ("customers/NOPE", "finance")):
            assert (await client.get(f"/system/v1/erp/{path}", headers=auth(keys[key]))).status_code in (200, 404)
        # A fourth call, by another key, on another route: the budget is the ERP's, not the caller's.
        refused = await client.get("/system/v1/erp/invoices/X-2", headers=auth(keys["admin"]))
        assert refused.status_code == 429 and refused.json()["code"] == "RATE_LIMITED"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # The tax engine has no such budget here.
        assert (await client.get("/system/v1/tax/jurisdictions/DE", headers=auth(keys["finance"]))).status_code == 200
