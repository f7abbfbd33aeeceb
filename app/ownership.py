"""Field ownership: which system may write which canonical field (the ``field_ownership`` table).

An integration key speaks for one system (``crm``, ``psa`` or ``erp``); a write that touches a
field another system owns is refused as a whole with 403 ``FIELD_NOT_OWNED``, before anything
is applied. A key that speaks for no system (an admin key, an integration key made without
``--system``) may write every field, and a field the table does not list belongs to no one.
The table is data, read on every write, so changing an owner takes effect at once everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.access import Principal
from app.db import Connection
from app.errors import DomainError, FieldError

__all__ = ["FieldNotOwned", "check_ownership"]


class FieldNotOwned(DomainError):
    def __init__(self, system: str, refused: list[tuple[str, str]]) -> None:
        names = [f"{field} (owned by {owner})" for field, owner in refused]
        super().__init__(
            detail=f"a {system} key may not write {', '.join(names)}",
            code="FIELD_NOT_OWNED",
            status=403,
            title="Forbidden",
            errors=[
                FieldError(["body"], f"{field} is owned by {owner}, not {system}", "FIELD_NOT_OWNED")
                for field, owner in refused
            ],
            extra={"fields": [field for field, _ in refused]},
        )


async def check_ownership(conn: Connection, principal: Principal, fields: Sequence[tuple[str, str]]) -> None:
    """Refuse the write when the key's system does not own every ``(object_type, field)`` it touches."""
    if principal.system is None or not fields:
        return
    rows = await conn.fetch(
        """select o.object_type || '.' || o.field as name, o.owner_system
           from field_ownership o
           join unnest($1::text[], $2::text[]) with ordinality as w(object_type, field, n)
             on w.object_type = o.object_type and w.field = o.field
           where o.owner_system <> $3
           order by w.n""",
        [object_type for object_type, _ in fields],
        [field for _, field in fields],
        principal.system,
    )
    if rows:
        raise FieldNotOwned(principal.system, [(r["name"], r["owner_system"]) for r in rows])
