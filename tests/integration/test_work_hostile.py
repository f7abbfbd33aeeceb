"""Hostile batches: every input a PSA controls, and what each costs. One bad entry never fails the
others; a malformed envelope is the request's 422; limits are checked before any entry is looked at."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.auth import create_client
from tests.factories import auth
from tests.work import TIME, get_entry, new_contract, post_raw, time_entry, tm


async def _results(api, keys, entries: list[Any]) -> list[dict[str, Any]]:  # noqa: ANN001
    response = await post_raw(api, keys["integration"], entries)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def test_5001_entries_are_refused_before_any_is_validated(api, keys):
    # Not even valid entries: the count alone decides, first.
    response = await post_raw(api, keys["integration"], [{"nonsense": i} for i in range(5001)])
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source": "kantata"}, ["body", "entries"]),
        ({"source": "kantata", "entries": {"TE-1": {}}}, ["body", "entries"]),
        ({"entries": []}, ["body", "source"]),
        ({"source": "kan tata/..", "entries": []}, ["body", "source"]),
        ({"source": "kantata", "entries": [], "extra": 1}, ["body", "extra"]),
        ([], ["body"]),
    ],
)
async def test_a_malformed_envelope_is_a_422_naming_the_field(api, keys, body, field):
    response = await api.post(TIME, json=body, headers=auth(keys["integration"]))
    assert response.status_code == 422, response.text
    assert field in [e["loc"] for e in response.json()["errors"]]


async def test_a_body_that_is_not_json_is_a_422(api, keys):
    headers = {**auth(keys["integration"]), "Content-Type": "application/json"}
    response = await api.post(TIME, content=b'{"source": "kantata", "entries": [', headers=headers)
    assert response.status_code == 422 and response.json()["errors"][0]["code"] == "INVALID_JSON"


async def test_hostile_values_are_rejected_entry_by_entry_naming_the_field(api, keys):
    contract_id = await new_contract(api, keys, tm())
    good = time_entry("TE-OK", contract_id, "2026-03-02", "1")
    hostile = [
        ("TE-NUM", {"hours": 7.5}, ["hours"]),  # a JSON number for a decimal
        ("TE-EXP", {"hours": "1E+999999999"}, ["hours"]),  # an exponent
        ("TE-BIG", {"hours": "9" * 40}, ["hours"]),  # a 40-digit number
        ("TE-NUL", {"description": "a\u0000b"}, ["description"]),  # NUL cannot be stored
        ("TE-DATE", {"work_date": "2026-03-02T10:00:00Z"}, ["work_date"]),  # a date-time for a date
        ("TE-1969", {"work_date": "1969-12-31"}, ["work_date"]),  # before the business range
        ("TE-TZ", {"approved_at": "2026-03-02T10:00:00"}, ["approved_at"]),  # no offset
        ("TE-ID", {"contract_id": "'; drop table work_entry; --"}, ["contract_id"]),
        ("TE-XTRA", {"billable": True}, ["billable"]),  # an unknown field
        ("TE-VOID", {"void": "yes"}, ["void"]),
    ]
    entries = [good] + [{**time_entry(ext, contract_id, "2026-03-02", "1"), **change} for ext, change, _ in hostile]
    results = await _results(api, keys, entries)
    assert results[0]["status"] == "accepted" and results[0]["amount"] == "200.00"
    for result, (ext, _, loc) in zip(results[1:], hostile, strict=True):
        assert (result["external_id"], result["status"], result["codes"]) == (ext, "rejected", ["INVALID_ENTRY"])
        assert result["amount"] is None and result["billing"] is None
        assert loc in [e["loc"] for e in result["errors"]], result
    # Nothing of the rejected ones was stored.
    missing = await api.get(f"{TIME}/kantata/TE-NUL", headers=auth(keys["admin"]))
    assert missing.status_code == 404


async def test_entries_that_are_not_objects_are_rejected_alone(api, keys):
    contract_id = await new_contract(api, keys, tm())
    results = await _results(api, keys, [None, "TE-1", 3, [], time_entry("TE-2", contract_id, "2026-03-02", "2")])
    assert [r["status"] for r in results] == ["rejected"] * 4 + ["accepted"]


async def test_hostile_path_ids_are_404(api, keys):
    for path in (f"{TIME}/kantata/%00", f"{TIME}/kan%20tata/TE-1", f"{TIME}/kantata/" + "x" * 300):
        response = await api.get(path, headers=auth(keys["admin"]))
        assert response.status_code == 404, (path, response.text)


async def test_a_crm_or_erp_key_cannot_post_work_and_a_psa_key_can(api, keys, services):
    contract_id = await new_contract(api, keys, tm())
    entries = [time_entry("TE-CRM", contract_id, "2026-03-02", "1")]
    async with services.db.transaction() as conn:
        systems = {
            s: (await create_client(conn, f"test-{s}", "integration", system=s))[1] for s in ("crm", "erp", "psa")
        }
    crm = await post_raw(api, systems["crm"], entries)
    assert crm.status_code == 403 and crm.json()["code"] == "FIELD_NOT_OWNED", crm.text
    erp = await api.post(
        "/process/v1/expenses", json={"source": "kantata", "entries": []}, headers=auth(systems["erp"])
    )
    assert erp.status_code == 403 and erp.json()["code"] == "FIELD_NOT_OWNED", erp.text
    finance = await post_raw(api, keys["finance"], entries)
    assert finance.status_code == 403 and finance.json()["code"] == "FORBIDDEN"
    async with services.db.connection() as conn:
        assert await conn.fetchval("select count(*) from work_entry") == 0
    psa = await post_raw(api, systems["psa"], entries)
    assert psa.status_code == 200 and psa.json()["results"][0]["status"] == "accepted", psa.text


async def test_a_large_batch_is_one_request_of_linear_cost(api, keys):
    """5,000 entries in one request, all judged; the same body again is 5,000 duplicates."""
    contract_id = await new_contract(api, keys, tm())
    entries = [time_entry(f"TE-{i:05d}", contract_id, "2026-03-02", "0.25") for i in range(5000)]
    body = json.dumps({"source": "kantata", "entries": entries})
    headers = {**auth(keys["integration"]), "Content-Type": "application/json"}
    first = await api.post(TIME, content=body, headers=headers)
    assert first.status_code == 200
    assert {r["status"] for r in first.json()["results"]} == {"accepted"}
    again = await api.post(TIME, content=body, headers=headers)
    assert {r["status"] for r in again.json()["results"]} == {"duplicate"}
    assert (await get_entry(api, keys, "TE-04999"))["amount"] == "50.00"  # 0.25 x 200.00
