"""One rate limit and one concurrency limit shared by every process, kept in Redis.

A single Lua script checks both and takes a slot atomically, on Redis' own clock, so N
workers on N machines together never exceed the ERP's limits. A slot is a lease: a worker
that dies holding one frees it when the lease runs out.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from limits import parse

__all__ = ["SharedThrottle"]

WINDOW_SLACK_MS = 100

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window, rate, lease, slots = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - lease)
if redis.call('ZCARD', KEYS[2]) >= slots then
  return 25
end
if redis.call('ZCARD', KEYS[1]) >= rate then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], window)
redis.call('PEXPIRE', KEYS[2], lease)
return 0
"""


class SharedThrottle:
    def __init__(self, redis: Any, name: str, rate: str, max_concurrency: int, lease_seconds: float = 60) -> None:
        item = parse(rate)
        self._redis = redis
        self._keys = [f"psbridge:throttle:{name}:rate", f"psbridge:throttle:{name}:slots"]
        # A little slack on the window: requests leave a slot with some jitter before the ERP sees them,
        # and the ERP counts by arrival. Without it two calls a window apart could land inside one.
        self._window_ms = int(item.get_expiry() * 1000) + WINDOW_SLACK_MS
        self._rate = item.amount
        self._slots = max(1, max_concurrency)
        self._lease_ms = int(lease_seconds * 1000)
        self._script = redis.register_script(_ACQUIRE)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[float]:
        """Wait for a slot within both limits; hold it for the duration of the call.

        Yields the seconds spent waiting, for the caller to report.
        """
        token = uuid.uuid4().hex
        started = time.perf_counter()
        while True:
            wait_ms = int(
                await self._script(
                    keys=self._keys, args=[self._window_ms, self._rate, self._lease_ms, self._slots, token]
                )
            )
            if wait_ms == 0:
                break
            # Jitter spreads waiting workers so they do not retry in lockstep.
            await asyncio.sleep(wait_ms / 1000 * random.uniform(1.0, 1.5))  # noqa: S311
        try:
            yield time.perf_counter() - started
        finally:
            await self._redis.zrem(self._keys[1], token)
