"""The processes ``psbridge dev`` starts: each in its own process group, stopped by dev, in order.

Why their own process groups: Ctrl-C in a terminal signals the whole foreground process group.
Children in that group would get SIGINT too and could exit before dev saw the stop, and dev would
take the first exit for a crash. In groups of their own only dev hears Ctrl-C (and make, which
waits for dev), and dev stops them itself: SIGTERM, a wait, SIGKILL after a timeout. They stay in
dev's session, so whatever looks for all that dev started still finds them.

A stop asked for (SIGINT, SIGTERM or SIGHUP to dev, or Ctrl-C) is only noted by the signal handler
and honoured at the next :meth:`Supervisor.checkpoint` (dev's waits poll it every 0.2 s), which
raises :class:`StopRequested`: an exception raised from a signal handler could land anywhere, e.g.
between starting a child and recording it. A second signal before the stop begins does raise at
once, to cut a stuck step short; once stopping, signals are only noted.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

__all__ = ["STOP_SIGNALS", "Child", "StopRequested", "Supervisor", "die_with_supervisor"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SUPERVISOR_PID_ENV = "PSBRIDGE_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1


class StopRequested(KeyboardInterrupt):
    """The user asked dev to stop. A KeyboardInterrupt, so asyncio and ``except Exception`` let it through."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class Child:
    name: str
    popen: subprocess.Popen[bytes]

    @property
    def exit_description(self) -> str:
        code = self.popen.returncode
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit {code}"


class Supervisor:
    def __init__(self, stop_timeout: float = 10.0) -> None:
        self.stop_timeout = stop_timeout
        self.children: list[Child] = []
        self.stop_signal: int | None = None
        self._shield_depth = 0
        self._stopping = False

    @property
    def stop_asked(self) -> bool:
        return self.stop_signal is not None

    def install_signal_handlers(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_stop_signal)
        # Children in background process groups that write to the terminal would be stopped by
        # SIGTTOU under `stty tostop`; an ignored SIGTTOU is inherited through exec and lets them write.
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)

    def _on_stop_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum
        elif not self._stopping:
            raise StopRequested(signum)

    def checkpoint(self) -> None:
        """Raise StopRequested if a stop was asked (and is not under way yet)."""
        if self.stop_signal is not None and not self._stopping:
            raise StopRequested(self.stop_signal)

    def spawn(self, name: str, args: Sequence[str], env: Mapping[str, str], cwd: Path) -> Child:
        self.checkpoint()
        popen = subprocess.Popen(
            list(args),
            env={**env, SUPERVISOR_PID_ENV: str(os.getpid())},
            cwd=cwd,
            stdin=subprocess.DEVNULL,  # a background process group reading the terminal would be stopped
            process_group=0,
        )
        child = Child(name, popen)
        self.children.append(child)
        return child

    def exited(self) -> Child | None:
        """A child that has exited (on its own: dev has not stopped anything yet), if any."""
        return next((c for c in self.children if c.popen.poll() is not None), None)

    def watch(self, interval: float = 0.2) -> Child:
        """Block until a child exits on its own (returned) or a stop is asked (StopRequested raised)."""
        while (child := self.exited()) is None:
            self.checkpoint()
            time.sleep(interval)
        return child

    def stop_all(self) -> list[str]:
        """Stop the running children, latest started first; the names of those stopped, in that order.

        After this, stop signals are only noted: a second Ctrl-C must not cut the clean-up short.
        """
        self._stopping = True
        stopped = []
        for child in reversed(self.children):
            if child.popen.poll() is not None:
                continue
            child.popen.send_signal(signal.SIGTERM)
            try:
                child.popen.wait(self.stop_timeout)
                stopped.append(child.name)
            except subprocess.TimeoutExpired:
                child.popen.kill()
                child.popen.wait()
                stopped.append(f"{child.name} (killed after {self.stop_timeout:.0f}s)")
        return stopped


def die_with_supervisor() -> None:
    """In a child of dev: get SIGTERM when dev dies, even by SIGKILL, so no orphan keeps holding a port."""
    supervisor = os.environ.pop(SUPERVISOR_PID_ENV, None)
    if supervisor is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != int(supervisor):  # dev died before the line above took effect
        os.kill(os.getpid(), signal.SIGTERM)
