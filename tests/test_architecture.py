"""The layers of DESIGN.md, enforced: import-linter contracts (pyproject) plus two facts strawberry relies on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_graphql_resolves_to_graphql_core() -> None:
    import graphql

    assert graphql.__file__ is not None and "site-packages" in graphql.__file__
    assert not (ROOT / "graphql" / "__init__.py").exists()
    assert not list((ROOT / "graphql").glob("*.py"))
