"""Control surface for tests and benchmarks: /__sandbox/faults, /__sandbox/reset, /__sandbox/log, /healthz.

These routes are not backends: they are neither logged nor subject to faults.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox._http import VALIDATION_ERROR, ApiError, read_object
from sandbox.state import SYSTEMS, SandboxState

__all__ = ["control_routes"]

LOG_DEFAULT_LIMIT = 100
LOG_MAX_LIMIT = 1000
_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def control_routes(state: SandboxState) -> list[BaseRoute]:
    control = _Control(state)
    return [
        Route("/healthz", control.health, methods=["GET"]),
        Route("/__sandbox/faults", control.get_faults, methods=["GET"]),
        Route("/__sandbox/faults", control.set_faults, methods=["POST"]),
        Route("/__sandbox/reset", control.reset, methods=["POST"]),
        Route("/__sandbox/log", control.log, methods=["GET"]),
    ]


class _Control:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def health(self, _request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def get_faults(self, _request: Request) -> Response:
        return JSONResponse(self._faults_view())

    async def set_faults(self, request: Request) -> Response:
        """Merges partial settings; the whole body is validated before anything changes."""
        body = await read_object(request)
        seed = body.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ApiError(422, VALIDATION_ERROR, "seed: must be an integer")
        updates: list[tuple[str, str, Any]] = []
        for system, settings in body.items():
            if system == "seed":
                continue
            if system not in SYSTEMS:
                raise ApiError(422, VALIDATION_ERROR, f"{system}: unknown system, expected one of {SYSTEMS}")
            updates.extend((system, name, value) for name, value in _parse_settings(system, settings))
        if seed is not None:
            self.state.rng = random.Random(seed)
        for system, name, value in updates:
            setattr(self.state.faults[system], name, value)
        return JSONResponse(self._faults_view())

    async def reset(self, _request: Request) -> Response:
        self.state.reset()
        self.state.changed()
        return Response(status_code=204)

    async def log(self, request: Request) -> Response:
        params = request.query_params
        system = params.get("system") or None
        if system is not None and system not in SYSTEMS:
            raise ApiError(422, VALIDATION_ERROR, f"system: one of {SYSTEMS}")
        after = _int_query(params.get("after"), "after", 0, None)
        limit = _int_query(params.get("limit"), "limit", LOG_DEFAULT_LIMIT, LOG_MAX_LIMIT)
        items, next_seq = self.state.log.page(system, after, limit)
        return JSONResponse(
            {
                "items": [entry.as_json() for entry in items],
                "next_cursor": None if next_seq is None else str(next_seq),
            }
        )

    def _faults_view(self) -> dict[str, Any]:
        return {system: faults.as_json() for system, faults in self.state.faults.items()}


def _parse_settings(system: str, settings: Any) -> list[tuple[str, Any]]:
    if not isinstance(settings, dict):
        raise ApiError(422, VALIDATION_ERROR, f"{system}: must be an object")
    parsed: list[tuple[str, Any]] = []
    for name, value in settings.items():
        parser = _SETTINGS.get(name)
        # Closed periods only mean something to the ERP's transactions.
        if parser is None or (name == "closed_periods" and system != "erp"):
            raise ApiError(422, VALIDATION_ERROR, f"{system}.{name}: unknown fault setting")
        parsed.append((name, parser(value, f"{system}.{name}")))
    return parsed


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _probability(value: Any, loc: str) -> float:
    if not _number(value) or not 0 <= value <= 1:
        raise ApiError(422, VALIDATION_ERROR, f"{loc}: must be a number in [0, 1]")
    return float(value)


def _milliseconds(value: Any, loc: str) -> float:
    if not _number(value) or value < 0:
        raise ApiError(422, VALIDATION_ERROR, f"{loc}: must be a number >= 0")
    return float(value)


def _flag(value: Any, loc: str) -> bool:
    if not isinstance(value, bool):
        raise ApiError(422, VALIDATION_ERROR, f"{loc}: must be true or false")
    return value


def _concurrency(value: Any, loc: str) -> int | None:
    if value is None:
        return None  # no limit
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ApiError(422, VALIDATION_ERROR, f"{loc}: must be a positive integer or null")
    return value


def _periods(value: Any, loc: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(p, str) and _PERIOD.fullmatch(p) for p in value):
        raise ApiError(422, VALIDATION_ERROR, f"{loc}: must be a list of YYYY-MM strings")
    return list(value)


_SETTINGS: dict[str, Callable[[Any, str], Any]] = {
    "error_rate": _probability,
    "reject_rate": _probability,
    "drop_response_rate": _probability,
    "latency_ms": _milliseconds,
    "down": _flag,
    "max_concurrency": _concurrency,
    "closed_periods": _periods,
}


def _int_query(raw: str | None, name: str, default: int, high: int | None) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or (high is not None and not 1 <= int(raw) <= high):
        raise ApiError(
            422,
            VALIDATION_ERROR,
            f"{name}: must be a non-negative integer" + (f" in [1, {high}]" if high is not None else ""),
        )
    return int(raw)
