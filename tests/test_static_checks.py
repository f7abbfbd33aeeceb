"""House tools as tests: ruff everywhere, mypy strict on the kernel and the pure rules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STRICT = [
    "app/money.py",
    "app/errors.py",
    "app/types.py",
    "app/settings.py",
    "app/db.py",
    "app/migrate.py",
    "app/throttle.py",
    "app/tasks.py",
    "app/auth.py",
    "app/access.py",
    "app/responses.py",
    "app/openapi.py",
    "app/observability.py",
    "app/worker.py",
    "app/problems.py",
    "app/http.py",
    "app/pagination.py",
    "app/outbox.py",
    "app/canonical/__init__.py",
    "app/canonical/contract.py",
    "app/canonical/intake.py",
    "app/ownership.py",
    "process_apis/contracts/amendment_rules.py",
    "process_apis/contracts/terms.py",
    "process_apis/contracts/whole_state.py",
    *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("process_apis/ledger/*.py") if p.name != "rules.py"),
    "process_apis/work/commands.py",
    "process_apis/work/service.py",
    "process_apis/work/store.py",
    "system_apis/erp/gated.py",
    "system_apis/crm/mapping.py",
    "system_apis/crm/mapping_spec.py",
    "process_apis/intake/service.py",
    "process_apis/intake/store.py",
    *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("process_apis/*/rules.py")),
    *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("jobs/*.py")),
]


def test_ruff_is_clean() -> None:
    result = subprocess.run([str(BIN / "ruff"), "check", "."], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_kernel_and_rules() -> None:
    result = subprocess.run(
        [str(BIN / "mypy"), "--strict", "--no-error-summary", *STRICT],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
