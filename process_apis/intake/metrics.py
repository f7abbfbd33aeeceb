"""The intake's counter, exported by the API process's /metrics (prometheus_client's default registry)."""

from __future__ import annotations

from prometheus_client import Counter

__all__ = ["MAPPING_FAILURES_TOTAL"]

MAPPING_FAILURES_TOTAL = Counter(
    "psbridge_mapping_failures_total", "Inbound payloads that could not be mapped on receipt, by vendor", ["vendor"]
)
