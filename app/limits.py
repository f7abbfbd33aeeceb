"""Request body size limit (Starlette has none): 413 before the body is read into memory.

Also ``ClientRateLimitMiddleware``: slowapi's ASGI middleware, applied per API client only.
"""

from __future__ import annotations

from slowapi.middleware import SlowAPIASGIMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.problems import problem, problem_response

__all__ = ["BodySizeLimitMiddleware", "ClientRateLimitMiddleware"]


class ClientRateLimitMiddleware:
    """Rate limits keyed by the authenticated API client (goes inside ``AuthMiddleware``).

    Requests without a client are the public probes and pages (``/healthz``, ``/readyz``,
    ``/docs``...): they are not limited, so one shared "anonymous" bucket can never turn a
    load balancer's health checks into 429s. slowapi's responder re-sends
    ``http.response.start`` before every body chunk; only the first one is passed on.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.limited = SlowAPIASGIMiddleware(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("state", {}).get("client") is None:
            await self.app(scope, receive, send)
            return
        started = False

        async def send_once(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                if started:
                    return
                started = True
            await send(message)

        await self.limited(scope, receive, send_once)


class _TooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _reject(self) -> ASGIApp:
        return problem_response(problem(413, f"the request body exceeds {self.max_bytes} bytes", "PAYLOAD_TOO_LARGE"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject()(scope, receive, send)
            return

        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject()(scope, receive, send)
