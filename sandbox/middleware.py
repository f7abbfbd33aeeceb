"""ASGI middleware around each backend app: the request log, injected faults, and change notices."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox._http import ErrorRenderer
from sandbox.state import SandboxState

__all__ = ["ChangeNoticeMiddleware", "FaultMiddleware", "RequestLogMiddleware", "wrap_backend"]

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def wrap_backend(app: ASGIApp, system: str, state: SandboxState, render_error: ErrorRenderer) -> ASGIApp:
    """Log outermost, so 429s and injected faults are in the log like any other answer; change notices
    innermost, so only writes that reached the backend (even with a dropped answer) count."""
    inner = ChangeNoticeMiddleware(app, state)
    return RequestLogMiddleware(FaultMiddleware(inner, system, state, render_error), system, state)


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp, system: str, state: SandboxState) -> None:
        self.app = app
        self.system = system
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = datetime.now(UTC)
        status = 500  # what the client sees if the app dies before answering

        async def send_recording_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_recording_status)
        finally:
            self.state.log.record(self.system, scope["method"], scope["path"], status, started_at, datetime.now(UTC))


class ChangeNoticeMiddleware:
    """After a write request, tells the state it may have changed (a persisted world is then saved)."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http" and scope["method"] not in _READ_METHODS:
                self.state.changed()


class FaultMiddleware:
    """Applies the backend's faults in this order: down, concurrency, latency, error, refusal, dropped response."""

    def __init__(self, app: ASGIApp, system: str, state: SandboxState, render_error: ErrorRenderer) -> None:
        self.app = app
        self.system = system
        self.state = state
        self.render_error = render_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        faults = self.state.faults[self.system]
        if faults.down:
            await self._answer(scope, receive, send, 503, "SERVICE_UNAVAILABLE", "sandbox: system is down")
            return
        limit = faults.max_concurrency
        if limit is not None and self.state.in_flight[self.system] >= limit:
            # Rejected at once, like NetSuite: the excess request never waits for a slot.
            await self._answer(scope, receive, send, 429, "CONCURRENCY_LIMIT_EXCEEDED", _CONCURRENCY_DETAIL)
            return
        self.state.in_flight[self.system] += 1
        try:
            await self._run(scope, receive, send)
        finally:
            self.state.in_flight[self.system] -= 1

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> None:
        faults = self.state.faults[self.system]
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        if self._draw(faults.error_rate):
            await self._answer(scope, receive, send, 500, "UNEXPECTED_ERROR", "sandbox: injected error")
            return
        if self._draw(faults.reject_rate):
            await self._answer(scope, receive, send, 422, "INVALID_REQUEST", "sandbox: injected refusal")
            return
        if scope["method"] not in _READ_METHODS and self._draw(faults.drop_response_rate):
            # The write commits but its answer is lost (a proxy timing out after the
            # backend did the work). This is the case an idempotent upsert by
            # external id must survive: the client retries and must not duplicate.
            await self.app(scope, receive, _discard)
            await self._answer(scope, receive, send, 504, "GATEWAY_TIMEOUT", "sandbox: response dropped")
            return
        await self.app(scope, receive, send)

    def _draw(self, rate: float) -> bool:
        # Draw only when the fault is on, so enabling one fault does not shift another's sequence.
        return rate > 0 and self.state.rng.random() < rate

    async def _answer(self, scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: str) -> None:
        await self.render_error(status, code, detail)(scope, receive, send)


_CONCURRENCY_DETAIL = (
    "Concurrent request limit exceeded. Request blocked. Wait for other requests to finish before sending more."
)


async def _discard(_message: Message) -> None:
    return None
