"""Jobs travel as JSON (never pickle), and both Redis URL forms configure arq."""

from __future__ import annotations

import pickle

import orjson
import pytest

from app.tasks import job_deserializer, job_serializer, redis_settings


def test_jobs_are_json_and_pickles_are_refused() -> None:
    payload = {"t": 1, "f": "post_invoice", "a": ["5b8f"], "k": {"correlation_id": "abc"}, "et": 1700000000000}
    raw = job_serializer(payload)
    assert orjson.loads(raw) == payload
    assert job_deserializer(raw) == payload
    with pytest.raises(orjson.JSONDecodeError):
        job_deserializer(pickle.dumps(payload))


def test_redis_settings_from_tcp_and_unix_urls() -> None:
    tcp = redis_settings("redis://127.0.0.1:6379/3")
    assert (tcp.host, tcp.port, tcp.database) == ("127.0.0.1", 6379, 3)
    unix = redis_settings("unix:///tmp/x/redis.sock?db=2")
    assert (unix.unix_socket_path, unix.database) == ("/tmp/x/redis.sock", 2)
