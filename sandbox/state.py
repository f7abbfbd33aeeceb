"""In-memory state shared by the sandbox backends: records, faults, the request log.

Everything lives in one `SandboxState` per `create_sandbox_app()` call, so each
test (or process) gets a fresh world; `reset()` brings it back to the seeds.
`changed()` tells whoever listens (the state file, see `persistence`) that the
world may have changed.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from itertools import islice
from typing import Any

__all__ = [
    "SYSTEMS",
    "CrmData",
    "ErpData",
    "LogEntry",
    "PsaData",
    "RequestLog",
    "SandboxState",
    "SystemFaults",
]

SYSTEMS = ("erp", "psa", "crm", "tax", "fx")

# NetSuite's default concurrency limit for a standard account tier.
DEFAULT_ERP_MAX_CONCURRENCY = 5
DEFAULT_SEED = 0
LOG_MAX_ENTRIES = 100_000

SEED_TAX_RATES: dict[str, Decimal] = {
    code: Decimal(rate)
    for code, rate in {
        "US-NY": "0.08875",
        "US-CA": "0.0725",
        "GB": "0.20",
        "DE": "0.19",
        "FR": "0.20",
        "NL": "0.21",
        "IE": "0.23",
        "ES": "0.21",
        "IT": "0.22",
        "CA-ON": "0.13",
    }.items()
}

Record = dict[str, Any]


@dataclass(slots=True)
class SystemFaults:
    """Fault settings of one backend; probabilities are plain floats (not money)."""

    error_rate: float = 0.0
    reject_rate: float = 0.0  # a 422 refusal of the request itself (bad data as the backend sees it)
    latency_ms: float = 0.0
    drop_response_rate: float = 0.0
    down: bool = False
    max_concurrency: int | None = None
    closed_periods: list[str] = field(default_factory=list)  # "YYYY-MM", ERP only

    def as_json(self) -> dict[str, Any]:
        return {
            "error_rate": self.error_rate,
            "reject_rate": self.reject_rate,
            "latency_ms": self.latency_ms,
            "drop_response_rate": self.drop_response_rate,
            "down": self.down,
            "max_concurrency": self.max_concurrency,
            "closed_periods": list(self.closed_periods),
        }


def _default_faults() -> dict[str, SystemFaults]:
    faults = {system: SystemFaults() for system in SYSTEMS}
    faults["erp"].max_concurrency = DEFAULT_ERP_MAX_CONCURRENCY
    return faults


@dataclass(slots=True)
class ErpData:
    """Records by type ("invoice", "creditMemo", "customer", "job") then external id.

    Dicts keep insertion order, which is the creation order lists must show;
    replacing a record keeps its place.
    """

    records: dict[str, dict[str, Record]] = field(default_factory=dict)
    external_by_id: dict[str, dict[str, str]] = field(default_factory=dict)
    next_id: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class PsaData:
    projects: dict[str, Record] = field(default_factory=dict)  # by PSA id, creation order
    project_by_external_id: dict[str, str] = field(default_factory=dict)
    billing_status: dict[tuple[str, str], Record] = field(default_factory=dict)  # (type, external_id)
    next_project: int = 1


@dataclass(slots=True)
class CrmData:
    # contract external id -> invoice id -> latest status record
    billing_status: dict[str, dict[str, Record]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LogEntry:
    seq: int
    system: str
    method: str
    path: str
    status: int
    started_at: datetime
    ended_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "system": self.system,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "started_at": _rfc3339(self.started_at),
            "ended_at": _rfc3339(self.ended_at),
        }


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RequestLog:
    """Bounded log of finished backend requests.

    A sequence number is given when a request *ends*, so entries are appended
    in seq order and a reader polling with `after=` never misses one that
    started earlier but finished later. Seqs never restart (not even on
    reset), so a cursor held across a reset stays valid.
    """

    def __init__(self, max_entries: int = LOG_MAX_ENTRIES) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=max_entries)
        self._last_seq = 0

    def record(
        self, system: str, method: str, path: str, status: int, started_at: datetime, ended_at: datetime
    ) -> LogEntry:
        self._last_seq += 1
        entry = LogEntry(self._last_seq, system, method, path, status, started_at, ended_at)
        self._entries.append(entry)
        return entry

    def clear(self) -> None:
        self._entries.clear()

    def page(self, system: str | None, after: int, limit: int) -> tuple[list[LogEntry], int | None]:
        """Up to `limit` entries with seq > `after`, and the cursor of the next page (None at the end)."""
        if not self._entries:
            return [], None
        # Seqs in the deque are contiguous, so the first candidate's index is arithmetic.
        start = max(0, after + 1 - self._entries[0].seq)
        items: list[LogEntry] = []
        for entry in islice(self._entries, start, None):
            if system is not None and entry.system != system:
                continue
            if len(items) == limit:
                return items, items[-1].seq
            items.append(entry)
        return items, None


class SandboxState:
    """The whole simulated world; backends read and write it, control routes reset it."""

    def __init__(self) -> None:
        self.log = RequestLog()
        self.listeners: list[Callable[[], None]] = []
        # In-flight counts survive reset: requests running across a reset still release their slot.
        self.in_flight: dict[str, int] = dict.fromkeys(SYSTEMS, 0)
        self.reset()

    def reset(self) -> None:
        self.faults = _default_faults()
        self.rng = random.Random(DEFAULT_SEED)
        self.erp = ErpData()
        self.psa = PsaData()
        self.crm = CrmData()
        self.tax_rates: dict[str, Decimal] = dict(SEED_TAX_RATES)
        self.fx_rates: dict[tuple[str, str, str], Decimal] = {}
        self.log.clear()

    def changed(self) -> None:
        for listener in self.listeners:
            listener()
