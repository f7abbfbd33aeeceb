"""Reference counting of embedded servers per data dir: the ``data_dir/.lock`` flock and the leases in
``data_dir/<svc>.clients.json``. A lease whose process has died (or whose pid was reused) no longer counts.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from app.dev.servers.procs import pid_alive, proc_start_time

T = TypeVar("T")


@contextlib.contextmanager
def flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class Leases:
    """Reference count of live handles on one embedded server, kept in a JSON file (caller holds the lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read_live(self) -> list[dict[str, Any]]:
        try:
            entries = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        live = []
        for e in entries if isinstance(entries, list) else []:
            try:
                pid = int(e["pid"])
            except (KeyError, TypeError, ValueError):
                continue
            if pid_alive(pid) and e.get("start") == proc_start_time(pid):
                live.append(e)
        return live

    def _write(self, entries: list[dict[str, Any]]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(entries))
        tmp.replace(self.path)

    def add(self) -> str:
        lease_id = uuid.uuid4().hex
        entries = self._read_live()
        entries.append({"id": lease_id, "pid": os.getpid(), "start": proc_start_time(os.getpid())})
        self._write(entries)
        return lease_id

    def remove(self, lease_id: str) -> int:
        """Drop ``lease_id``; return how many live leases remain."""
        entries = [e for e in self._read_live() if e.get("id") != lease_id]
        self._write(entries)
        return len(entries)


def start_leased(
    stack: contextlib.ExitStack, data_dir: Path, name: str, start: Callable[[], T], stop: Callable[[], None]
) -> T:
    """Start/adopt a server under the data-dir lock and take a lease; the last lease released stops it.

    Creates ``data_dir`` if missing (with the lock file).
    """
    lock = data_dir / ".lock"
    leases = Leases(data_dir / f"{name}.clients.json")
    with flock(lock):
        result = start()
        lease_id = leases.add()

    def release() -> None:
        with flock(lock):
            if leases.remove(lease_id) == 0:
                stop()

    stack.callback(release)
    return result
