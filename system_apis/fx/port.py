"""Daily FX rates as process APIs see them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Protocol


class FxPort(Protocol):
    async def find_rate(self, on: date, base: str, quote: str) -> Decimal | None:
        """1 ``base`` = rate ``quote`` on that day; None when the day's rate is not published."""
        ...
