"""The shared ERP throttle holds across independent Redis connections (as across worker processes)."""

from __future__ import annotations

import asyncio
import time
import uuid

from redis.asyncio import Redis

from app.settings import Settings
from app.throttle import SharedThrottle


async def test_concurrency_and_rate_hold_across_connections(settings: Settings) -> None:
    name = f"test-{uuid.uuid4().hex[:8]}"
    clients = [Redis.from_url(settings.required_redis_url) for _ in range(3)]
    throttles = [SharedThrottle(c, name, "8/second", max_concurrency=2) for c in clients]
    in_flight, peak, starts = 0, 0, []

    async def call(throttle: SharedThrottle) -> None:
        nonlocal in_flight, peak
        async with throttle.slot():
            starts.append(time.monotonic())
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.01)
            in_flight -= 1

    try:
        await asyncio.gather(*(call(throttles[i % 3]) for i in range(20)))
    finally:
        for c in clients:
            await c.aclose()
    assert peak <= 2
    assert len(starts) == 20
    starts.sort()
    # No one-second window (by the same clock Redis runs on here) admits more than 8 calls.
    assert max(sum(1 for s in starts if t <= s < t + 0.99) for t in starts) <= 8


async def test_a_dead_holder_releases_its_slot_when_the_lease_ends(settings: Settings) -> None:
    redis = Redis.from_url(settings.required_redis_url)
    name = f"test-{uuid.uuid4().hex[:8]}"
    throttle = SharedThrottle(redis, name, "100/second", 1, lease_seconds=0.2)
    try:
        # A worker took the only slot and died: its lease entry stays behind with no one to release it.
        seconds, micros = await redis.time()
        await redis.zadd(f"psbridge:throttle:{name}:slots", {"dead-worker": seconds * 1000 + micros // 1000})
        async with asyncio.timeout(5):
            async with throttle.slot():
                pass
    finally:
        await redis.aclose()
