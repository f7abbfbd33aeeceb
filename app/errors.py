"""The one error tree.

``DomainError`` and its subclasses carry a machine ``code`` and an HTTP status. Routes
let them rise; ``app.problems`` renders them as RFC 9457 problem+json, and the GraphQL
layer maps them to errors with ``extensions.code``. Nothing else is caught silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import PydanticCustomError

FIELD_ERROR = "field_error"


@dataclass(frozen=True)
class FieldError:
    loc: Sequence[str | int]
    msg: str
    code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"loc": list(self.loc), "msg": self.msg}
        if self.code:
            out["code"] = self.code
        return out


def field_error(field: str | Sequence[str | int], msg: str) -> PydanticCustomError:
    """For model validators: ``raise field_error("end_date", "must not be before start_date")``.

    A bare ``ValueError`` in a model validator has no location (``loc: ["body"]``); this one
    names the field, so the 422 says ``loc: ["body", "end_date"]``.
    """
    loc = (field,) if isinstance(field, str) else tuple(field)
    return PydanticCustomError(FIELD_ERROR, msg, {"field_loc": loc})


@dataclass
class DomainError(Exception):
    detail: str
    code: str = "ERROR"
    status: int = 400
    title: str = "Bad request"
    errors: list[FieldError] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.detail)


class NotFound(DomainError):
    def __init__(self, detail: str, code: str = "NOT_FOUND") -> None:
        super().__init__(detail=detail, code=code, status=404, title="Not found")


class Conflict(DomainError):
    def __init__(self, detail: str, code: str, **extra: Any) -> None:
        super().__init__(detail=detail, code=code, status=409, title="Conflict", extra=extra)


class ValidationFailed(DomainError):
    def __init__(self, detail: str, code: str = "VALIDATION_FAILED", errors: list[FieldError] | None = None) -> None:
        super().__init__(detail=detail, code=code, status=422, title="Unprocessable content", errors=errors or [])


class Unauthorized(DomainError):
    def __init__(self, detail: str = "a valid bearer API key is required") -> None:
        super().__init__(detail=detail, code="UNAUTHORIZED", status=401, title="Unauthorized")


class Forbidden(DomainError):
    def __init__(self, detail: str = "this API key's role may not do this") -> None:
        super().__init__(detail=detail, code="FORBIDDEN", status=403, title="Forbidden")


# Callers of our API are told how long to wait when a backend gave no Retry-After of its own.
DEFAULT_RETRY_AFTER = 30.0


class BackendUnavailable(DomainError):
    """A system API could not be reached, throttled us or failed: retryable.

    ``ambiguous``: the request may have been applied (a timeout or a reset after it was sent, a 5xx):
    before writing again, look the record up. ``detail`` names the outcome, never the backend's body
    (that goes to the log): it reaches our API's callers.
    """

    def __init__(
        self,
        system: str,
        detail: str,
        retry_after: float | None = None,
        ambiguous: bool = False,
        circuit_open: bool = False,
    ) -> None:
        super().__init__(
            detail=f"{system}: {detail}", code="BACKEND_UNAVAILABLE", status=503, title="Backend unavailable"
        )
        self.system = system
        self.retry_after = DEFAULT_RETRY_AFTER if retry_after is None else retry_after
        self.backend_retry_after = retry_after  # what the backend itself asked for, if anything
        self.ambiguous = ambiguous
        self.circuit_open = circuit_open  # not even tried: the backend's circuit is open (no try spent)


class BackendRejected(DomainError):
    """A system API refused the request itself (a 4xx that is not a throttle): retrying will not help
    until someone changes the data or the configuration."""

    def __init__(self, system: str, code: str, detail: str) -> None:
        super().__init__(
            detail=f"{system} refused the request: {code}", code="BACKEND_REJECTED", status=502, title="Bad gateway"
        )
        self.system, self.vendor_code, self.vendor_detail = system, code, detail


class RateLimited(DomainError):
    """Over a shared budget: 429 with ``Retry-After``."""

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail=detail, code="RATE_LIMITED", status=429, title="Too many requests")
        self.retry_after = retry_after
