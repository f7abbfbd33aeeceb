"""When a job gives up (jobs/retry.py): its tries used — waits for an open circuit not counted — and
its time budget since it was queued passed. A flaky backend never exhausts a job; an outage does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobs.retry import is_final_attempt


def ctx(job_try: int, queued_ago: timedelta | None, budget: float = 3600.0) -> dict:
    c = {"job_id": "post:x", "job_try": job_try, "max_tries": 8, "services": None, "time_budget": budget}
    if queued_ago is not None:
        c["enqueue_time"] = datetime.now(UTC) - queued_ago
    return c


def test_tries_alone_do_not_end_a_job_within_its_budget():
    assert not is_final_attempt(ctx(8, timedelta(minutes=10)))  # type: ignore[arg-type]
    assert not is_final_attempt(ctx(30, timedelta(minutes=59)))  # type: ignore[arg-type]


def test_used_tries_and_a_spent_budget_end_it():
    assert is_final_attempt(ctx(8, timedelta(minutes=61)))  # type: ignore[arg-type]
    assert not is_final_attempt(ctx(7, timedelta(hours=5)))  # type: ignore[arg-type] - a try is left


def test_circuit_waits_are_not_tries_and_no_budget_means_tries_alone():
    assert not is_final_attempt(ctx(9, timedelta(hours=2)), circuit_waits=2)  # type: ignore[arg-type]
    assert is_final_attempt(ctx(8, timedelta(seconds=1), budget=0))  # type: ignore[arg-type]
    assert is_final_attempt(ctx(8, None))  # type: ignore[arg-type] - no queueing time known: tries alone
