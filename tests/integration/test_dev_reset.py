"""``psbridge dev --reset`` wipes the demo and nothing else: its own database, its own queue's keys."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
import pytest
import redis

from app.dev.reset import ResetRefused, clear_queue, reset_demo
from app.dev.servers import ServiceUrls, recreate_database
from tests.e2e.support import scratch_database


def _queue_with_jobs(client: redis.Redis, queue: str, job_ids: list[str]) -> list[str]:
    """What arq leaves in Redis for queued jobs: the queue's sorted set, job and in-progress keys, health."""
    client.zadd(queue, {job_id: n for n, job_id in enumerate(job_ids)})
    keys = [queue, f"{queue}:health-check"]
    for job_id in job_ids:
        client.set(f"arq:job:{job_id}", b"x")
        client.set(f"arq:in-progress:{job_id}", b"1")
        keys += [f"arq:job:{job_id}", f"arq:in-progress:{job_id}"]
    client.set(f"{queue}:health-check", b"ok")
    return keys


def test_clearing_a_queue_leaves_every_other_key_alone(service_urls: ServiceUrls) -> None:
    ours, theirs = (f"psbridge:test-reset:{uuid.uuid4().hex[:12]}" for _ in range(2))
    with redis.Redis.from_url(service_urls.redis_url) as client:
        mine = _queue_with_jobs(client, ours, [f"post:{uuid.uuid4()}", f"post:{uuid.uuid4()}"])
        kept = _queue_with_jobs(client, theirs, [f"post:{uuid.uuid4()}"])
        try:
            assert clear_queue(service_urls.redis_url, ours) == 2
            assert client.exists(*mine) == 0
            assert client.exists(*kept) == len(kept)
        finally:
            client.delete(*mine, *kept)


async def test_recreating_a_database_leaves_it_empty(service_urls: ServiceUrls) -> None:
    with scratch_database(service_urls.database_url, "psbridge_reset") as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("create table leftover (id int)")
        finally:
            await conn.close()
        recreate_database(url)
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetch("select tablename from pg_tables where schemaname = 'public'") == []
        finally:
            await conn.close()


@pytest.mark.parametrize("database", ["postgres", "template1"])
def test_a_server_database_is_never_dropped(service_urls: ServiceUrls, tmp_path: Path, database: str) -> None:
    keys_file = tmp_path / "demo-keys.json"
    keys_file.write_text("{}")
    url = service_urls.database_url.rpartition("/")[0] + f"/{database}"
    with pytest.raises(ResetRefused):
        reset_demo(url, service_urls.redis_url, "psbridge:never-cleared", [keys_file])
    assert keys_file.exists(), "nothing is deleted when the reset is refused"
