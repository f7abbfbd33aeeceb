"""Daily FX rates as process APIs see them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Protocol


class FxPort(Protocol):
    """A day without a rate is ``None`` (the expense is held ``FX_RATE_MISSING``); an FX API that cannot
    answer raises ``BackendUnavailable`` (the same hold, retried later); a refusal ``BackendRejected``."""

    async def find_rate(self, on: date, base: str, quote: str) -> Decimal | None:
        """1 ``base`` = rate ``quote`` on that day; None when the day's rate is not published."""
        ...
