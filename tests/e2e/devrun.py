"""Run ``psbridge dev`` (or ``make run`` itself) once, check it, stop it, check nothing is left.

Used in-process by tests/e2e/test_make_run.py, and as a script inside ``unshare -n`` (a network namespace
where nothing listens, so ``dev`` must start embedded PostgreSQL and Redis)::

    python -m tests.e2e.devrun --lo-up DATA_DIR LOG_DIR API_PORT SANDBOX_PORT STOP [STOP ...]

which prints one JSON line ``{"ok": true, "runs": [...]}`` or ``{"ok": false, "error": "..."}``.

A stop the user asks for must be clean whatever the order the processes end in: ``dev`` exits 0 and its
last words are one ``stopped: ...`` line naming what it stopped.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from app.dev.seed import DEMO_CLIENTS
from tests.e2e.support import REPO_ROOT, Proc, bearer, cli, pid_alive, session_members, wait_for

ACME_NUMBER = "SOW-2026-014"
BANNER_END = "Ctrl-C stops everything."
DEMO_KEYS = tuple(DEMO_CLIENTS)
STOP_WITHIN = 20.0
# How a run is stopped: Ctrl-C in a terminal signals the whole foreground process group; a service
# manager or `kill` signals the one process.
STOPS = {"ctrl-c": "SIGINT to the process group", "sigint": "SIGINT to dev only", "sigterm": "SIGTERM to dev only"}
STOPPED_LOCAL = "stopped: API, worker, sandbox"
STOPPED_EMBEDDED = "stopped: API, worker, sandbox, embedded PostgreSQL and Redis"


def lo_up() -> None:
    """``ip link set lo up`` without iproute2: SIOCGIFFLAGS / SIOCSIFFLAGS with IFF_UP."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, 0x8913, ifr))[1]
        fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", flags | 1))


def _embedded_pids(data_dir: Path) -> dict[str, int]:
    pids = {}
    for name, pidfile in (
        ("postgres", data_dir / "pg" / "postmaster.pid"),
        ("redis", data_dir / "redis" / "redis.pid"),
    ):
        try:
            pids[name] = int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return pids


def run_dev(
    data_dir: Path,
    log_dir: Path,
    env: dict[str, str],
    api_port: int,
    sbx_port: int,
    stop: str,
    name: str,
    extra_args: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Start ``psbridge dev``, wait until it serves the seeded Acme contract, stop it with ``stop``."""
    dev = start_dev(data_dir, log_dir, env, api_port, sbx_port, name, extra_args)
    with cleaned_up(dev):
        run = _check_and_stop(dev, data_dir, f"http://127.0.0.1:{api_port}", stop)
        assert run["exit_code"] == 0, f"psbridge dev exited {run['exit_code']} after {STOPS[stop]}"
        assert_clean_stop(run)
        return run


def start_dev(
    data_dir: Path,
    log_dir: Path,
    env: dict[str, str],
    api_port: int,
    sbx_port: int,
    name: str,
    extra_args: tuple[str, ...] = (),
) -> Proc:
    """``psbridge dev`` in a session of its own, where everything it starts can be found."""
    args = cli("dev", "--port", str(api_port), "--sandbox-port", str(sbx_port), "--data-dir", str(data_dir))
    return Proc(name, [*args, *extra_args], env, log_dir, new_session=True)


def assert_clean_stop(run: dict[str, Any]) -> None:
    """dev's last words after a stop asked for: one line naming all it stopped, no error."""
    expected = STOPPED_EMBEDDED if run["embedded"] else STOPPED_LOCAL
    assert run["stop_lines"] == [expected], f"after {STOPS[run['stop']]}: {run['stop_lines']}"
    assert not run["error_lines"], run["error_lines"]


def run_make(
    data_dir: Path, log_dir: Path, env: dict[str, str], api_port: int, sbx_port: int, name: str
) -> dict[str, Any]:
    """``make run`` in the repo, settings through the environment, stopped by Ctrl-C (SIGINT to its group)."""
    env = {
        **{k: v for k, v in env.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")},
        "PSBRIDGE_PORT": str(api_port),
        "PSBRIDGE_SANDBOX_PORT": str(sbx_port),
        "PSBRIDGE_DATA_DIR": str(data_dir),
    }
    # -o: never (re)install from a test; `make run` then only runs `psbridge dev` on the installed .venv.
    args = ["make", "--no-print-directory", "-C", str(REPO_ROOT), "-o", ".venv/.installed-stamp", "run"]
    make = Proc(name, args, env, log_dir, new_session=True)
    with cleaned_up(make):
        return _check_and_stop(make, data_dir, f"http://127.0.0.1:{api_port}", "ctrl-c")


@contextmanager
def cleaned_up(proc: Proc) -> Iterator[None]:
    """Failures get the process's output; whatever it left running in its session is killed."""
    try:
        yield
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{proc.diagnostics(60)}") from None
    finally:
        if proc.popen.poll() is None or session_members(proc.pid):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.popen.wait(5)


def _check_and_stop(dev: Proc, data_dir: Path, api: str, stop: str) -> dict[str, Any]:
    def alive() -> None:
        assert dev.popen.poll() is None, f"psbridge dev exited with {dev.popen.returncode} before it was ready"

    def ready() -> bool:
        alive()
        return httpx.get(f"{api}/readyz", timeout=2).status_code == 200

    t0 = time.monotonic()
    wait_for(ready, f"{api}/readyz", timeout=90)
    ready_s = time.monotonic() - t0

    def banner() -> str | None:
        alive()
        return dev.stdout() if BANNER_END in dev.stdout() else None

    # The banner comes last, after every demo key (the customer portal's too) was minted.
    printed = wait_for(banner, "the banner", timeout=60)
    keys = json.loads((data_dir / "demo-keys.json").read_text())
    assert set(keys) == set(DEMO_KEYS), f"demo keys: {sorted(keys)}"
    for key_name, key in keys.items():
        assert f"{key_name}" in printed and key in printed, f"demo key {key_name} not printed:\n{printed}"
    assert api in printed, printed
    contracts = _acme_contracts(api, keys["demo-integration"])
    assert contracts, f"the seeded Acme contract is not served:\n{printed}"
    project_id = _wait_propagated(api, keys["demo-integration"], contracts[0]["id"], alive)
    started = [p for p in session_members(dev.pid) if p != dev.pid]
    embedded = _embedded_pids(data_dir)
    assert len(started) >= 3, f"expected sandbox, API and worker under dev, got pids {started}"

    t1 = time.monotonic()
    if stop == "ctrl-c":
        os.killpg(dev.pid, signal.SIGINT)
    elif stop == "sigint":
        dev.popen.send_signal(signal.SIGINT)
    elif stop == "sigterm":
        dev.popen.send_signal(signal.SIGTERM)
    else:
        raise ValueError(stop)
    try:
        code = dev.popen.wait(STOP_WITHIN)
    except Exception as exc:
        raise AssertionError(f"psbridge dev did not exit within {STOP_WITHIN:.0f}s of {STOPS[stop]}") from exc
    stop_s = time.monotonic() - t1
    wait_for(lambda: not session_members(dev.pid), "every process dev started to be gone", timeout=3)
    assert not [p for p in started if pid_alive(p)], f"children left running: {started}"
    still = {k: p for k, p in embedded.items() if pid_alive(p)}
    assert not still, f"embedded servers left running: {still}"
    stderr = dev.stderr_path.read_text(errors="replace")
    banner_id = [line for line in printed.splitlines() if ACME_NUMBER in line]
    return {
        "stop": stop,
        "ready_s": round(ready_s, 2),
        "stop_s": round(stop_s, 2),
        "exit_code": code,
        "children": len(started),
        "embedded": sorted(embedded),
        "contracts": contracts,
        "project_id": project_id,
        "keys": keys,
        "banner_contract": banner_id[0].strip() if banner_id else None,
        "stderr_head": stderr[:400],
        "stop_lines": [line for line in stderr.splitlines() if line.startswith("stopped:")],
        "error_lines": [line for line in stderr.splitlines() if line.startswith("error:")],
        "make_lines": [line for line in (stderr + dev.stdout()).splitlines() if line.startswith("make")],
    }


def _acme_contracts(api: str, key: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{api}/process/v1/contracts", headers=bearer(key), timeout=5)
    assert r.status_code == 200, f"GET /process/v1/contracts: {r.status_code} {r.text}"
    return [c for c in r.json()["items"] if c["number"] == ACME_NUMBER]


def _wait_propagated(api: str, key: str, contract_id: str, alive: Any) -> str:
    """The PSA project id of the contract, once the worker has created the project in the sandbox."""

    def project_id() -> str | None:
        alive()
        r = httpx.get(f"{api}/process/v1/contracts/{contract_id}", headers=bearer(key), timeout=5)
        return r.json().get("project_id") if r.status_code == 200 else None

    found: str = wait_for(project_id, "the Acme project in the PSA", timeout=60)
    return found


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--lo-up":
        lo_up()
        argv = argv[1:]
    data_dir, log_dir, api_port, sbx_port, *stops = argv
    env = {k: v for k, v in os.environ.items() if k not in ("PSBRIDGE_DATABASE_URL", "PSBRIDGE_REDIS_URL")}
    try:
        runs = [
            run_dev(Path(data_dir), Path(log_dir), env, int(api_port), int(sbx_port), stop, f"dev{i}")
            for i, stop in enumerate(stops, 1)
        ]
    except AssertionError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 1
    print(json.dumps({"ok": True, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
