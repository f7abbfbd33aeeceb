"""Request body size limit (Starlette has none): 413 before the body is read into memory.

Also ``ClientRateLimitMiddleware``: one rate budget per API client across the whole API, counted in
Redis by ``limits``' asyncio API (slowapi's middleware calls its storage synchronously: every request
would stop the event loop for a Redis round trip).
"""

from __future__ import annotations

import time

import redis.asyncio
from limits import parse
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import RateLimited
from app.problems import problem, problem_response

__all__ = ["BodySizeLimitMiddleware", "ClientRateLimitMiddleware", "Governor", "rate_limit_storage"]


def rate_limit_storage(redis_url: str, pool: redis.asyncio.ConnectionPool) -> RedisStorage:
    """``limits``' asyncio Redis storage on a redis-py pool the app owns (and disconnects at shutdown)."""
    if redis_url.startswith("unix://"):  # limits names the Unix socket scheme its own way
        uri = "async+redis+unix://" + redis_url.removeprefix("unix://")
    else:
        uri = "async+" + redis_url
    return RedisStorage(uri, implementation="redispy", connection_pool=pool)


class Governor:
    """One budget for a kind of call, shared by every caller and every process (a fixed window in
    Redis): over it, ``take`` raises ``RateLimited`` with the time until the window turns."""

    def __init__(self, limit: str, storage: Storage, key: str) -> None:
        self.limit, self.key = parse(limit), key
        self.limiter = FixedWindowRateLimiter(storage)

    async def take(self) -> None:
        if await self.limiter.hit(self.limit, self.key):
            return
        reset, _ = await self.limiter.get_window_stats(self.limit, self.key)
        raise RateLimited(f"over {self.limit} for {self.key}", max(1.0, reset - time.time()))


class ClientRateLimitMiddleware:
    """Rate limits keyed by the authenticated API client (goes inside ``AuthMiddleware``), never by
    a spoofable address. Requests without a client are the public probes and pages (``/healthz``,
    ``/readyz``, ``/docs``...): they are not limited, so one shared "anonymous" bucket can never turn
    a load balancer's health checks into 429s. Over the budget: 429 ``RATE_LIMITED`` with ``Retry-After``.
    """

    def __init__(self, app: ASGIApp, limit: str, storage: Storage) -> None:
        self.app = app
        self.limit = parse(limit)
        self.limiter = FixedWindowRateLimiter(storage)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("state", {}).get("client") if scope["type"] == "http" else None
        if client is None:
            await self.app(scope, receive, send)
            return
        key = f"client:{client.id}"
        if await self.limiter.hit(self.limit, key):
            await self.app(scope, receive, send)
            return
        reset, _ = await self.limiter.get_window_stats(self.limit, key)
        retry_after = max(1, int(reset - time.time()) + 1)
        refused = problem(429, f"rate limit exceeded: {self.limit}", "RATE_LIMITED")
        await problem_response(refused, {"Retry-After": str(retry_after)})(scope, receive, send)


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
