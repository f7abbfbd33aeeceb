"""Building blocks of response models: amounts as decimal strings, cursor pages, exception references.

Responses are pydantic models too, so the OpenAPI document describes exactly what a route
builds (``app.openapi``), and generated clients get types instead of untyped dicts.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from app.money import to_str

__all__ = ["Amount", "ApiModel", "ExceptionRef", "Page", "amount"]

T = TypeVar("T")

# An amount as JSON carries it: a decimal string, rounded to its currency's minor units.
Amount = Annotated[
    str,
    Field(pattern=r"^-?[0-9]+(\.[0-9]+)?$", description="A decimal string, e.g. 1234.50", examples=["1234.50"]),
]


def amount(value: Decimal, currency: str | None = None) -> str:
    text = to_str(value, currency)
    assert text is not None
    return text


class ApiModel(BaseModel):
    # Responses are built by psbridge, never parsed from clients: frozen, and strict about their own fields.
    model_config = ConfigDict(frozen=True, extra="forbid")


class Page(ApiModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Pass as `after` for the next page; null on the last page")


class ExceptionRef(ApiModel):
    id: uuid.UUID
    code: str
    detail: str
