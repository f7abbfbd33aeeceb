"""How ``psbridge dev`` ends, besides a stop once it is up (tests/e2e/test_make_run.py): a stop during
start-up is clean too, a child dying on its own is a crash named in one line, and dev's children never
outlive dev, even when it is killed outright.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from app.dev.servers import ServiceUrls
from tests.e2e.devrun import BANNER_END, STOP_WITHIN, cleaned_up, start_dev
from tests.e2e.support import (
    REPO_ROOT,
    Proc,
    clean_env,
    free_port,
    http_ok,
    pid_alive,
    scratch_database,
    scratch_queue,
    session_members,
    wait_for,
)

pytestmark = pytest.mark.e2e


@contextmanager
def _local_env(service_urls: ServiceUrls) -> Iterator[dict[str, str]]:
    with (
        scratch_database(service_urls.database_url, "psbridge_dev_stops", create=False) as database_url,
        scratch_queue(service_urls.redis_url, "psbridge:e2e-dev") as queue,
    ):
        yield clean_env(
            PSBRIDGE_DATABASE_URL=database_url, PSBRIDGE_REDIS_URL=service_urls.redis_url, PSBRIDGE_QUEUE_NAME=queue
        )


def _ended(dev: Proc) -> tuple[int, list[str]]:
    """dev's exit code once it has exited, and the lines of its stderr; nothing it started is left."""
    try:
        code = dev.popen.wait(STOP_WITHIN)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"psbridge dev did not exit within {STOP_WITHIN:.0f}s") from None
    wait_for(lambda: not session_members(dev.pid), "every process dev started to be gone", timeout=5)
    return code, dev.stderr_path.read_text(errors="replace").splitlines()


def _while_alive(dev: Proc, check: Callable[[], bool]) -> Callable[[], bool]:
    """``check``, failing at once if dev has exited meanwhile."""

    def checked() -> bool:
        assert dev.popen.poll() is None, f"psbridge dev exited with {dev.popen.returncode}"
        return check()

    return checked


def test_a_stop_during_start_up_is_clean(tmp_path: Path, service_urls: ServiceUrls) -> None:
    api_port, sbx_port = free_port(), free_port()
    with _local_env(service_urls) as env:
        dev = start_dev(tmp_path / "data", tmp_path, env, api_port, sbx_port, "dev")
        with cleaned_up(dev):
            # The sandbox is up: dev is seeding, or starting the worker and the API. Whichever it is doing,
            # Ctrl-C stops what was started so far.
            sandbox = f"http://127.0.0.1:{sbx_port}/healthz"
            wait_for(_while_alive(dev, lambda: http_ok(sandbox)), "the sandbox", timeout=90)
            os.killpg(dev.pid, signal.SIGINT)
            code, lines = _ended(dev)
    assert code == 0, lines
    stopped = [line for line in lines if line.startswith("stopped:")]
    assert len(stopped) == 1 and stopped[0].endswith("sandbox"), lines
    assert not [line for line in lines if line.startswith("error:") or "Traceback" in line], lines


def test_a_child_dying_on_its_own_is_a_crash_named_in_one_line(tmp_path: Path, service_urls: ServiceUrls) -> None:
    with _local_env(service_urls) as env:
        dev = start_dev(tmp_path / "data", tmp_path, env, free_port(), free_port(), "dev")
        with cleaned_up(dev):
            wait_for(_while_alive(dev, lambda: BANNER_END in dev.stdout()), "the banner", timeout=90)
            [worker] = [pid for pid in session_members(dev.pid) if _cmdline(pid)[-1:] == ["worker"]]
            os.kill(worker, signal.SIGKILL)
            code, lines = _ended(dev)
    assert code == 1, lines
    assert [line for line in lines if line.startswith(("error:", "stopped:"))] == [
        "error: the worker exited on its own (killed by SIGKILL); stopped: API, sandbox"
    ], lines
    assert not [line for line in lines if "Traceback" in line], lines


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []


# A stand-in for dev: starts the sandbox through the Supervisor, then waits to be killed.
SUPERVISOR_DRIVER = """
import os, sys, time
from pathlib import Path
from app.dev.supervisor import Supervisor

child = Supervisor().spawn("sandbox", [sys.executable, "-m", "app.cli", "sandbox", "--port", sys.argv[1]],
                           os.environ, Path.cwd())
print(child.popen.pid, flush=True)
time.sleep(300)
"""


def test_children_do_not_outlive_a_killed_dev(tmp_path: Path) -> None:
    port = free_port()
    args = [sys.executable, "-c", SUPERVISOR_DRIVER, str(port)]
    child = 0
    with subprocess.Popen(args, env=clean_env(), cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) as driver:
        try:
            assert driver.stdout is not None
            child = int(driver.stdout.readline())
            wait_for(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), "the sandbox", timeout=60)
            # Its own process group (Ctrl-C at the terminal reaches only dev), in dev's session (findable).
            assert os.getpgid(child) == child and os.getsid(child) == os.getsid(driver.pid)
            driver.kill()  # SIGKILL: dev gets no chance to stop anything
            driver.wait(10)
            wait_for(lambda: not pid_alive(child), "the sandbox to follow the killed dev", timeout=30)
        finally:
            driver.kill()
            if child and pid_alive(child):
                os.kill(child, signal.SIGKILL)
