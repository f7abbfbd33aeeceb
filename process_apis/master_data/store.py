"""Legal entities: SQL."""

from __future__ import annotations

from typing import Any

from app.db import Connection
from process_apis.master_data.commands import LegalEntityIn


async def upsert_legal_entity(conn: Connection, code: str, cmd: LegalEntityIn) -> bool:
    """True when the entity was created, False when updated."""
    created: bool = await conn.fetchval(
        """insert into legal_entity (code, name, country, functional_currency, allowed_currencies)
           values ($1, $2, $3, $4, $5)
           on conflict (code) do update set name = excluded.name, country = excluded.country,
               functional_currency = excluded.functional_currency,
               allowed_currencies = excluded.allowed_currencies, updated_at = now()
           returning (xmax = 0)""",
        code,
        cmd.name,
        cmd.country,
        cmd.functional_currency,
        cmd.allowed_currencies,
    )
    return created


async def list_legal_entities(conn: Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch("select * from legal_entity order by code")
    return [
        {
            "code": r["code"],
            "name": r["name"],
            "country": r["country"],
            "functional_currency": r["functional_currency"],
            "allowed_currencies": list(r["allowed_currencies"]),
        }
        for r in rows
    ]
