"""The layers of docs/architecture.md, enforced: import-linter contracts (pyproject) and two facts strawberry needs.

The contracts are proven to bite: a copy of the source tree gets one probe module that breaks one rule,
and lint-imports must then report exactly that contract broken, naming the probe.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
CONTRACTS = {contract["id"]: contract for contract in CONFIG["contracts"]}

# A backend that does not exist yet: rules must cover it without anyone editing the contracts.
DOCUMENTS_BACKEND = {
    "system_apis/documents/__init__.py": "",
    "system_apis/documents/port.py": "from typing import Protocol\n\n\nclass DocumentsPort(Protocol): ...\n",
    "system_apis/documents/client.py": "import httpx\n\nfrom system_apis.documents.port import DocumentsPort\n",
}


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    # A wide terminal keeps each contract's name and verdict on one line.
    env = {**os.environ, "COLUMNS": "500"}
    return subprocess.run(
        [str(LINT), "--no-cache", "--no-logo"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_import_contracts_hold() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_every_backend_is_in_the_independence_contract() -> None:
    backends = {f"system_apis.{p.parent.name}" for p in (ROOT / "system_apis").glob("*/__init__.py")}
    assert set(CONTRACTS["backends"]["modules"]) == backends


def _tree_with(probe: dict[str, str], into: Path) -> Path:
    """A copy of the packages and their contracts, plus the probe's files."""

    def not_python(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if n == "__pycache__" or (Path(directory, n).is_file() and not n.endswith(".py"))]

    for package in CONFIG["root_packages"]:
        shutil.copytree(ROOT / package, into / package, ignore=not_python)
    shutil.copy(ROOT / "pyproject.toml", into / "pyproject.toml")
    for path, text in probe.items():
        (into / path).parent.mkdir(parents=True, exist_ok=True)
        (into / path).write_text(text)
    return into


PROBES = {
    "a new kernel module importing a process API": (
        {"app/_probe.py": "import process_apis.billing.service\n"},
        "kernel",
        "app._probe",
    ),
    "a kernel module importing the composition root": (
        {"app/_probe.py": "import app.main\n"},
        "composition-root",
        "app._probe",
    ),
    "a process API importing the throttled ERP adapter": (
        {"process_apis/_probe.py": "from system_apis.erp import gated\n"},
        "process-apis",
        "process_apis._probe",
    ),
    "a process API importing an HTTP client": (
        {"process_apis/_probe.py": "from system_apis.erp.client import HttpErp\n"},
        "process-apis",
        "process_apis._probe",
    ),
    "a process API importing the client of a backend added later": (
        {**DOCUMENTS_BACKEND, "process_apis/_probe.py": "import system_apis.documents.client\n"},
        "process-apis",
        "process_apis._probe",
    ),
    "a job importing the shared outbound HTTP helper": (
        {"jobs/_probe.py": "import system_apis.http\n"},
        "experience-and-jobs",
        "jobs._probe",
    ),
    "the experience layer importing a client": (
        {"experience_apis/_probe.py": "from system_apis.fx.client import HttpFx\n"},
        "experience-and-jobs",
        "experience_apis._probe",
    ),
    "a port importing its own client": (
        {**DOCUMENTS_BACKEND, "system_apis/documents/port.py": "import system_apis.documents.client\n"},
        "ports",
        "system_apis.documents.port",
    ),
}


@pytest.mark.parametrize("probe", PROBES)
def test_a_broken_rule_breaks_its_contract(probe: str, tmp_path: Path) -> None:
    files, contract_id, offender = PROBES[probe]
    result = _lint(_tree_with(files, tmp_path))
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert f"{CONTRACTS[contract_id]['name']} BROKEN" in out, out
    assert "1 broken" in out, out  # this rule and no other
    assert offender in out, out  # the copy was analysed, not the installed tree


def test_a_process_api_may_import_the_port_of_a_backend_added_later(tmp_path: Path) -> None:
    probe = {**DOCUMENTS_BACKEND, "process_apis/_probe.py": "import system_apis.documents.port\n"}
    # The layer rules need no edit for a new backend (only the independence list, which a test checks).
    result = _lint(_tree_with(probe, tmp_path))
    assert result.returncode == 0 and "0 broken" in result.stdout, result.stdout + result.stderr


def test_graphql_resolves_to_graphql_core() -> None:
    import graphql

    assert graphql.__file__ is not None and "site-packages" in graphql.__file__
    assert not (ROOT / "graphql" / "__init__.py").exists()
    assert not list((ROOT / "graphql").glob("*.py"))
