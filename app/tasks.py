"""The task queue port and its arq adapter.

arq is in maintenance mode, so the rest of psbridge sees only ``TaskQueue``. Jobs are
serialised as JSON, never pickle: whoever can write to Redis must not run code in the
workers. Job ids are deterministic, so enqueueing the same intent twice is a no-op.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

import orjson
from arq.connections import ArqRedis, RedisSettings, create_pool

from app.observability import correlation_id

__all__ = ["ArqTaskQueue", "TaskQueue", "job_deserializer", "job_serializer", "redis_settings"]


class TaskQueue(Protocol):
    async def enqueue(self, job: str, *args: str, job_id: str, defer_seconds: float | None = None) -> bool:
        """Queue ``job(*args)`` once per ``job_id``; False when that id is already queued or running."""
        ...

    async def ping(self) -> bool: ...

    async def depth(self) -> int:
        """Jobs in the queue: waiting, deferred to a later try, or running."""
        ...


def job_serializer(data: dict[str, Any]) -> bytes:
    # A failed job's result is its exception: stored as its repr, since JSON has no exceptions.
    return orjson.dumps(data, default=repr)


def job_deserializer(raw: bytes) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(raw)
    return value


def redis_settings(url: str) -> RedisSettings:
    """``redis://host:port/db`` or ``unix:///path/redis.sock?db=0`` (the embedded server)."""
    parsed = urlparse(url)
    if parsed.scheme == "unix":
        db = int(parse_qs(parsed.query).get("db", ["0"])[0])
        return RedisSettings(unix_socket_path=parsed.path, database=db)
    return RedisSettings.from_dsn(url)


class ArqTaskQueue:
    def __init__(self, pool: ArqRedis, queue_name: str) -> None:
        self.pool = pool
        self.queue_name = queue_name

    @classmethod
    async def connect(cls, url: str, queue_name: str) -> ArqTaskQueue:
        pool = await create_pool(
            redis_settings(url),
            job_serializer=job_serializer,
            job_deserializer=job_deserializer,
            default_queue_name=queue_name,
        )
        return cls(pool, queue_name)

    async def enqueue(self, job: str, *args: str, job_id: str, defer_seconds: float | None = None) -> bool:
        # The correlation id rides along as a keyword so the job's logs and writes carry it.
        queued = await self.pool.enqueue_job(
            job,
            *args,
            _job_id=job_id,
            _queue_name=self.queue_name,
            _defer_by=defer_seconds,
            correlation_id=correlation_id(),
        )
        return queued is not None

    async def ping(self) -> bool:
        return bool(await self.pool.ping())

    async def depth(self) -> int:
        # arq keeps a job in its sorted set until the job ends; its own health check counts it the same way.
        return int(await self.pool.zcard(self.queue_name))

    async def close(self) -> None:
        await self.pool.aclose()
