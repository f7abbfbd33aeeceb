"""Master data requests."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.types import CurrencyCode


class LegalEntityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    country: str = Field(pattern=r"^[A-Z]{2}$")
    functional_currency: CurrencyCode
    allowed_currencies: list[CurrencyCode] = Field(min_length=1, max_length=50)

    @model_validator(mode="after")
    def _functional_allowed(self) -> LegalEntityIn:
        if self.functional_currency not in self.allowed_currencies:
            self.allowed_currencies = [self.functional_currency, *self.allowed_currencies]
        return self
