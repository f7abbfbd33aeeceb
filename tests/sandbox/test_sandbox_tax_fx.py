"""Tax treatments, rates and rounding; FX daily rates."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

REVERSE_CHARGE_NOTE = (
    "Reverse charge: VAT to be accounted for by the recipient (Art. 196 Council Directive 2006/112/EC)"
)


def quote_body(seller: str, jurisdiction: str, nets: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "seller_country": seller,
        "jurisdiction": jurisdiction,
        "customer_tax_id": None,
        "currency": "USD",
        "lines": [{"key": f"L{i + 1}", "net": net} for i, net in enumerate(nets)],
        **extra,
    }


async def test_jurisdiction_lookup(client: httpx.AsyncClient) -> None:
    assert (await client.get("/tax/jurisdictions/US-NY")).json() == {
        "code": "US-NY",
        "country": "US",
        "rate": "0.08875",
    }
    missing = await client.get("/tax/jurisdictions/ZZ")
    assert missing.status_code == 404
    assert missing.json()["code"] == "UNKNOWN_TAX_JURISDICTION"


async def test_same_country_is_standard_rate(client: httpx.AsyncClient) -> None:
    response = await client.post("/tax/quotes", json=quote_body("US", "US-NY", ["1000.00", "33.33"]))
    assert response.status_code == 200
    quote = response.json()
    assert (quote["treatment"], quote["rate"], quote["note"]) == ("standard", "0.08875", None)
    # 33.33 × 0.08875 = 2.9580375 → 2.96
    assert quote["lines"] == [
        {"key": "L1", "net": "1000.00", "rate": "0.08875", "tax": "88.75"},
        {"key": "L2", "net": "33.33", "rate": "0.08875", "tax": "2.96"},
    ]


async def test_intra_eu_with_vat_id_is_reverse_charge(client: httpx.AsyncClient) -> None:
    body = quote_body("DE", "FR", ["1000.00"], customer_tax_id="FR40303265045", currency="EUR")
    quote = (await client.post("/tax/quotes", json=body)).json()
    assert (quote["treatment"], quote["rate"], quote["note"]) == ("reverse_charge", "0", REVERSE_CHARGE_NOTE)
    assert quote["lines"] == [{"key": "L1", "net": "1000.00", "rate": "0", "tax": "0.00"}]


async def test_intra_eu_without_vat_id_fails_validation(client: httpx.AsyncClient) -> None:
    for tax_id in (None, "", "  "):
        response = await client.post("/tax/quotes", json=quote_body("DE", "FR", ["1.00"], customer_tax_id=tax_id))
        assert response.status_code == 422
        assert response.json() == {
            "code": "TAX_VALIDATION_FAILED",
            "detail": "customer VAT id required for intra-EU supply",
        }


@pytest.mark.parametrize(("seller", "jurisdiction"), [("GB", "US-NY"), ("US", "DE"), ("DE", "GB"), ("US", "CA-ON")])
async def test_other_cross_border_pairs_are_exempt_exports(
    client: httpx.AsyncClient, seller: str, jurisdiction: str
) -> None:
    quote = (await client.post("/tax/quotes", json=quote_body(seller, jurisdiction, ["500.00"]))).json()
    assert (quote["treatment"], quote["rate"], quote["note"]) == ("exempt_export", "0", None)
    assert quote["lines"][0]["tax"] == "0.00"


async def test_quote_for_unknown_jurisdiction_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/tax/quotes", json=quote_body("US", "US-TX", ["1.00"]))
    assert response.status_code == 404
    assert response.json()["code"] == "UNKNOWN_TAX_JURISDICTION"


@pytest.mark.parametrize(
    ("currency", "net", "tax"),
    [
        ("EUR", "0.25", "0.05"),  # 0.05 exactly
        ("EUR", "0.125", "0.03"),  # 0.025 → half up
        ("EUR", "-0.125", "-0.03"),  # ties away from zero for credits too
        ("EUR", "-0.01", "0.00"),  # -0.002 rounds to an unsigned zero
        ("JPY", "1002", "200"),  # 200.4
        ("JPY", "1003", "201"),  # 200.6
        ("JPY", "-1002.5", "-201"),  # -200.5
        ("KWD", "10.0025", "2.001"),  # 2.0005
    ],
)
async def test_line_tax_rounds_half_up_to_minor_units(
    client: httpx.AsyncClient, currency: str, net: str, tax: str
) -> None:
    body = quote_body("FR", "FR", [net], currency=currency)
    quote = (await client.post("/tax/quotes", json=body)).json()
    assert quote["lines"][0]["tax"] == tax


async def test_put_rate_creates_then_updates(client: httpx.AsyncClient) -> None:
    created = await client.put("/tax/rates/US-TX", json={"rate": "0.0625"})
    assert (created.status_code, created.json()) == (
        201,
        {"code": "US-TX", "country": "US", "rate": "0.0625"},
    )
    updated = await client.put("/tax/rates/GB", json={"rate": "0.175"})
    assert updated.status_code == 200
    assert (await client.get("/tax/jurisdictions/GB")).json()["rate"] == "0.175"
    quote = (await client.post("/tax/quotes", json=quote_body("US", "US-TX", ["100.00"]))).json()
    assert quote["lines"][0]["tax"] == "6.25"


@pytest.mark.parametrize("rate", ["1", "1.00", "-0.01", "abc", 0.2, None])
async def test_put_rate_rejects_out_of_range(client: httpx.AsyncClient, rate: Any) -> None:
    assert (await client.put("/tax/rates/GB", json={"rate": rate})).status_code == 422


async def test_quote_validation(client: httpx.AsyncClient) -> None:
    for body in (
        quote_body("US", "US-NY", [], lines=None),
        quote_body("US", "US-NY", [], lines=[{"key": "L1", "net": 100}]),
        quote_body("USA", "US-NY", ["1.00"]),
        quote_body("US", "US-NY", ["1.00"], currency=None),
    ):
        assert (await client.post("/tax/quotes", json=body)).status_code == 422, body


async def test_fx_put_get_and_missing(client: httpx.AsyncClient) -> None:
    url = "/fx/rates/2026-03-31/USD/EUR"
    missing = await client.get(url)
    assert missing.status_code == 404
    assert missing.json()["code"] == "FX_RATE_MISSING"

    created = await client.put(url, json={"rate": "0.8571"})
    assert created.status_code == 201
    assert created.json() == {"date": "2026-03-31", "base": "USD", "quote": "EUR", "rate": "0.8571"}
    assert (await client.put(url, json={"rate": "0.8600"})).status_code == 200
    assert (await client.get(url)).json()["rate"] == "0.8600"
    # Other days and the inverse pair are not derived.
    assert (await client.get("/fx/rates/2026-04-01/USD/EUR")).status_code == 404
    assert (await client.get("/fx/rates/2026-03-31/EUR/USD")).status_code == 404


async def test_fx_same_currency_is_one(client: httpx.AsyncClient) -> None:
    response = await client.get("/fx/rates/2026-03-31/GBP/GBP")
    assert response.json() == {"date": "2026-03-31", "base": "GBP", "quote": "GBP", "rate": "1"}


async def test_fx_validation(client: httpx.AsyncClient) -> None:
    assert (await client.put("/fx/rates/2026-02-30/USD/EUR", json={"rate": "1.1"})).status_code == 422
    assert (await client.put("/fx/rates/2026-03-31/USDX/EUR", json={"rate": "1.1"})).status_code == 422
    assert (await client.put("/fx/rates/2026-03-31/USD/EUR", json={"rate": "0"})).status_code == 422
    assert (await client.put("/fx/rates/2026-03-31/USD/EUR", json={"rate": 1.1})).status_code == 422
