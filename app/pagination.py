"""Opaque keyset cursors: ``(created_at, id)`` of the last row, base64url-encoded."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from app.errors import ValidationFailed

__all__ = ["decode_cursor", "encode_cursor"]


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
