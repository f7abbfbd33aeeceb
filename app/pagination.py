"""Opaque keyset cursors: ``(created_at, id)`` of the last row, base64url-encoded."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from app.errors import ValidationFailed

__all__ = ["Cursor", "PageQuery", "after_keys", "decode_cursor", "encode_cursor", "page_of"]

Cursor = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The next_cursor of the previous page (opaque: a cursor psbridge did not issue is a 422)",
    ),
]


class PageQuery(BaseModel):
    """``?limit=&after=``: every list is a keyset page."""

    limit: int = Field(default=50, ge=1, le=500, description="Items per page")
    after: Cursor | None = None


def encode_cursor(created_at: datetime, row_id: uuid.UUID | str) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, row_id = raw.split("|", 1)
        return datetime.fromisoformat(stamp), uuid.UUID(row_id)
    except ValueError:
        raise ValidationFailed("the cursor is not one this API issued", code="INVALID_CURSOR") from None


def after_keys(cursor: str | None) -> tuple[datetime | None, uuid.UUID | None]:
    """The ``(created_at, id)`` to continue after, as two query parameters (None, None from the start)."""
    decoded = decode_cursor(cursor)
    return decoded if decoded else (None, None)


def page_of(rows: list[Any], limit: int) -> tuple[list[Any], str | None]:
    """Split ``limit + 1`` fetched rows into the page and the cursor of the next one (None at the end)."""
    page = rows[:limit]
    more = len(rows) > limit
    return page, encode_cursor(page[-1]["created_at"], page[-1]["id"]) if more else None
