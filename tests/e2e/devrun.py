"""Run ``psbridge dev`` (what ``make run`` runs) once, check it, stop it, check nothing is left.

Used in-process by tests/e2e/test_make_run.py, and as a script inside ``unshare -n`` (a network namespace
where nothing listens, so ``dev`` must start embedded PostgreSQL and Redis)::

    python -m tests.e2e.devrun --lo-up DATA_DIR LOG_DIR API_PORT SANDBOX_PORT STOP [STOP ...]

which prints one JSON line ``{"ok": true, "runs": [...]}`` or ``{"ok": false, "error": "..."}``.
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
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.support import Proc, bearer, cli, pid_alive, session_members, wait_for

ACME_NUMBER = "SOW-2026-014"
BANNER_END = "Ctrl-C stops everything."
STOP_WITHIN = 20.0
# How a run is stopped: Ctrl-C in a terminal signals the whole foreground process group; a service
# manager or `kill` signals the one process.
STOPS = {"ctrl-c": "SIGINT to the process group", "sigint": "SIGINT to dev only", "sigterm": "SIGTERM to dev only"}


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
    data_dir: Path, log_dir: Path, env: dict[str, str], api_port: int, sbx_port: int, stop: str, name: str
) -> dict[str, Any]:
    """Start ``psbridge dev``, wait until it serves the seeded Acme contract, stop it with ``stop``."""
    api = f"http://127.0.0.1:{api_port}"
    args = cli("dev", "--port", str(api_port), "--sandbox-port", str(sbx_port), "--data-dir", str(data_dir))
    dev = Proc(name, args, env, log_dir, new_session=True)  # its own session: all it starts can be found
    try:
        return _check_and_stop(dev, data_dir, api, stop)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{dev.diagnostics(60)}") from None
    finally:
        if dev.popen.poll() is None or session_members(dev.pid):
            try:
                os.killpg(dev.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            dev.popen.wait(5)


def _check_and_stop(dev: Proc, data_dir: Path, api: str, stop: str) -> dict[str, Any]:
    def alive() -> None:
        assert dev.popen.poll() is None, f"psbridge dev exited with {dev.popen.returncode} before it was ready"

    def ready() -> bool:
        alive()
        return httpx.get(f"{api}/readyz", timeout=2).status_code == 200

    t0 = time.monotonic()
    wait_for(ready, f"{api}/readyz", timeout=90)
    ready_s = time.monotonic() - t0

    keys_file = data_dir / "demo-keys.json"

    def acme() -> dict[str, Any] | None:
        alive()
        keys = json.loads(keys_file.read_text())
        r = httpx.get(f"{api}/process/v1/contracts", headers=bearer(keys["demo-integration"]), timeout=5)
        assert r.status_code == 200, f"GET /process/v1/contracts: {r.status_code} {r.text}"
        items = [c for c in r.json()["items"] if c["number"] == ACME_NUMBER]
        return {"keys": keys, "contracts": items} if items else None

    found = wait_for(acme, "the seeded Acme contract", timeout=30)
    wait_for(lambda: BANNER_END in dev.stdout(), "the banner", timeout=10)
    banner = dev.stdout()
    keys = found["keys"]
    for key_name, key in keys.items():
        assert f"{key_name}" in banner and key in banner, f"demo key {key_name} not printed:\n{banner}"
    assert api in banner, banner
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
    assert code == 0, f"psbridge dev exited {code} after {STOPS[stop]}"
    banner_id = [line for line in banner.splitlines() if ACME_NUMBER in line]
    return {
        "stop": stop,
        "ready_s": round(ready_s, 2),
        "stop_s": round(stop_s, 2),
        "exit_code": code,
        "children": len(started),
        "embedded": sorted(embedded),
        "contracts": found["contracts"],
        "keys": keys,
        "banner_contract": banner_id[0].strip() if banner_id else None,
        "stderr_head": dev.stderr_path.read_text(errors="replace")[:400],
    }


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
