"""Keeping the simulated world across restarts: a JSON snapshot of `SandboxState` in one file.

Saved is what the real systems would remember: ERP records and their ids, PSA projects and the
project counter, CRM and PSA billing status, tax and FX rates. psbridge remembers invoices posted
and project ids, so forgetting them on restart would leave it pointing at records that no longer
exist and reusing project ids. The request log, in-flight counts and faults belong to the test
harness, not to the world, and start afresh.

Writes are atomic (a temp file renamed over the old one), so a crash mid-write leaves the previous
snapshot; they are debounced, so a burst of requests costs one write, and flushed on shutdown.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sandbox.state import CrmData, ErpData, PsaData, SandboxState

__all__ = ["StateFileError", "StateSaver", "load_state", "restore", "save_state", "snapshot"]

FORMAT = "psbridge-sandbox-state"
VERSION = 1
SAVE_DELAY_SECONDS = 0.5


class StateFileError(Exception):
    """The state file exists but cannot be used."""


def snapshot(state: SandboxState) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "erp": {
            "records": state.erp.records,
            "external_by_id": state.erp.external_by_id,
            "next_id": state.erp.next_id,
        },
        "psa": {
            "projects": state.psa.projects,
            "project_by_external_id": state.psa.project_by_external_id,
            # JSON has no tuple keys: each entry carries its (type, external id) key.
            "billing_status": [[kind, ext, record] for (kind, ext), record in state.psa.billing_status.items()],
            "next_project": state.psa.next_project,
        },
        "crm": {"billing_status": state.crm.billing_status},
        "tax_rates": {code: str(rate) for code, rate in state.tax_rates.items()},
        "fx_rates": [[on, base, quote, str(rate)] for (on, base, quote), rate in state.fx_rates.items()],
    }


def restore(state: SandboxState, data: dict[str, Any]) -> None:
    """Replace the world of ``state`` with a snapshot; raises StateFileError if it is not one."""
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
        raise StateFileError(f"not a {FORMAT} file of version {VERSION}")
    try:
        erp, psa = data["erp"], data["psa"]
        state.erp = ErpData(
            records=dict(erp["records"]), external_by_id=dict(erp["external_by_id"]), next_id=dict(erp["next_id"])
        )
        state.psa = PsaData(
            projects=dict(psa["projects"]),
            project_by_external_id=dict(psa["project_by_external_id"]),
            billing_status={(kind, ext): record for kind, ext, record in psa["billing_status"]},
            next_project=int(psa["next_project"]),
        )
        state.crm = CrmData(billing_status=dict(data["crm"]["billing_status"]))
        state.tax_rates = {code: Decimal(rate) for code, rate in data["tax_rates"].items()}
        state.fx_rates = {(on, base, quote): Decimal(rate) for on, base, quote, rate in data["fx_rates"]}
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise StateFileError(f"malformed snapshot ({type(exc).__name__}: {exc})") from exc


def load_state(state: SandboxState, path: Path) -> bool:
    """Restore ``state`` from ``path`` if the file exists; True if it did."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StateFileError(f"cannot read {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StateFileError(f"{path} is not JSON: {exc}") from exc
    try:
        restore(state, data)
    except StateFileError as exc:
        raise StateFileError(f"{path}: {exc}") from exc
    return True


def save_state(state: SandboxState, path: Path) -> None:
    """Write the snapshot next to ``path`` then rename it over ``path``: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(snapshot(state), out, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class StateSaver:
    """Saves the state to its file shortly after changes, and once more at shutdown."""

    def __init__(self, state: SandboxState, path: Path, delay: float = SAVE_DELAY_SECONDS) -> None:
        self.state = state
        self.path = path
        self.delay = delay
        self._pending: asyncio.TimerHandle | None = None

    def changed(self) -> None:
        if self._pending is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a synchronous caller): nothing to debounce with
            self.flush()
            return
        self._pending = loop.call_later(self.delay, self.flush)

    def flush(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        save_state(self.state, self.path)
