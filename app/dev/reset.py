"""``psbridge dev --reset``: forget the demo, so the next start seeds it afresh.

What goes: the demo's database (dropped and created empty), the sandbox's state file, the demo keys
file, and the arq keys of the demo's queue in Redis. Nothing else: never another database, never a
Redis key outside that queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import redis
from arq.constants import (
    health_check_key_suffix,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)

from app.dev.servers import database_of, recreate_database

__all__ = ["ResetRefused", "reset_demo"]

# Databases a server cannot lose: a configured URL naming one of them is a mistake, not a demo.
_NEVER_DROPPED = frozenset({"postgres", "template0", "template1"})


class ResetRefused(Exception):
    pass


def reset_demo(database_url: str, redis_url: str, queue_name: str, files: Sequence[Path]) -> str:
    """Wipe the demo; returns one line saying what was wiped."""
    database = database_of(database_url)
    if database in _NEVER_DROPPED:
        raise ResetRefused(f"refusing to drop the {database!r} database: point PSBRIDGE_DATABASE_URL at the demo's")
    recreate_database(database_url)
    deleted = [path.name for path in files if _unlink(path)]
    jobs = clear_queue(redis_url, queue_name)
    return (
        f"reset: recreated database {database}; deleted {', '.join(deleted) or 'no files (none existed)'}; "
        f"cleared queue {queue_name} ({jobs} job(s))"
    )


def clear_queue(redis_url: str, queue_name: str) -> int:
    """Delete the queue's sorted set, its health check, and the keys of the jobs it holds; the job count.

    arq keeps a job's id in the queue until the job ends (also while it runs), so the ids in the
    queue name every job key of this queue; keys of other queues are left alone.
    """
    with redis.Redis.from_url(redis_url) as client:
        job_ids = [raw.decode() for raw in client.zrange(queue_name, 0, -1)]
        prefixes = (job_key_prefix, in_progress_key_prefix, retry_key_prefix, result_key_prefix)
        keys = [queue_name, queue_name + health_check_key_suffix]
        keys += [prefix + job_id for job_id in job_ids for prefix in prefixes]
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    return len(job_ids)


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
