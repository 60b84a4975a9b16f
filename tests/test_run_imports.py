"""The start of ``devskyy run`` imports only what running a workflow needs (issue 13.5).

A fresh interpreter imports the ``run`` command, opens the applied store and starts the
agents ``scan_and_fix`` calls, exactly as ``devskyy run`` does before its first step;
then none of the libraries that only other commands (or a step, on use) need may be in
``sys.modules``. Each of them is installed here, so the check can fail.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# Packages that serve other commands (serve, watch, worker, migrate, the API) or that an
# agent imports only when a step uses them (codemods, secret detection, live check).
NOT_ON_THE_RUN_PATH = (
    "alembic",
    "anthropic",
    "bandit",
    "dask",
    "detect_secrets",
    "distributed",
    "fastapi",
    "http",
    "httpx",
    "jinja2",
    "jsonschema",
    "libcst",
    "markdown",
    "networkx",
    "packaging",
    "pathspec",
    "psycopg",
    "requests",
    "sqlalchemy",  # the default store runs on the stdlib driver (adapters/sqlite_engine.py)
    "starlette",
    "uvicorn",
    "yaml",  # manifests are read by validate/plan/apply, not by run
)

CHILD = r"""
import asyncio, json, sys
from devskyy.cli import runs

async def start() -> list[str]:
    system = await runs.open_system(None, start_agents=False)
    try:
        workflow = system.workflows.workflow("scan_and_fix")
        await runs._start_agents(system, runs._called_by(system, workflow))
        return sorted(a["name"] for a in system.registry.list_agents())
    finally:
        await system.close()

started = asyncio.run(start())
print(json.dumps({"started": started, "modules": sorted(sys.modules)}))
"""


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _devskyy() -> str:
    return str(Path(sys.executable).with_name("devskyy"))


def _apply_manifests(workspace: Path) -> None:
    """The project's manifests copied into ``workspace`` and applied there (a real process)."""
    shutil.copytree(ROOT / "manifests", workspace / "manifests")
    applied = _run([_devskyy(), "apply", "manifests"], workspace)
    assert applied.returncode == 0, applied.stderr


def test_each_forbidden_package_is_installed_so_the_check_can_fail() -> None:
    missing = [n for n in NOT_ON_THE_RUN_PATH if importlib.util.find_spec(n) is None]
    assert missing == []


def test_devskyy_run_starts_without_the_other_commands_libraries(tmp_path: Path) -> None:
    _apply_manifests(tmp_path)
    done = _run([sys.executable, "-c", CHILD], tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["started"] == ["fixer", "scanner", "security", "verifier"]
    loaded = {m.split(".")[0] for m in report["modules"]}
    assert sorted(loaded & set(NOT_ON_THE_RUN_PATH)) == []
    # The Dask seam itself is imported only for --runner dask; a SQLite store needs no
    # PostgreSQL dialect; keys, policy and audit are the security manager's (API, keys
    # commands), and the commerce, UI and schedule tables other commands'.
    assert "devskyy.runtime.dask_runner" not in report["modules"]
    assert "devskyy.runtime.security.manager" not in report["modules"]
    for adapter in ("commerce_store", "security_store", "ui_sessions", "schedule_store"):
        assert f"devskyy.adapters.{adapter}" not in report["modules"]


WHOLE_RUN = r"""
import json, sys
from devskyy.cli import main
try:
    main(["run", "scan_and_fix", "-p", "target_path=proj", "-o", "json"], prog_name="devskyy")
finally:
    print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "sqlalchemy")))
"""


def test_a_whole_run_on_the_default_store_never_imports_sqlalchemy(tmp_path: Path) -> None:
    """Created, recorded step by step and finished through the stdlib driver; then
    ``runs show`` (SQLAlchemy Core) reads the same run back."""
    _apply_manifests(tmp_path)
    shutil.copytree(ROOT / "examples" / "sample_project", tmp_path / "proj")
    done = _run([sys.executable, "-c", WHOLE_RUN], tmp_path)
    assert done.returncode == 0, done.stderr
    record_text, imported = done.stdout.strip().rsplit("\n", 1)
    assert json.loads(imported) == []
    record = json.loads(record_text)
    assert record["status"] == "succeeded"
    shown = _run([_devskyy(), "runs", "show", record["id"], "-o", "json"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    again = json.loads(shown.stdout)
    assert again["status"] == "succeeded"
    assert {n: s["status"] for n, s in again["steps"].items()} == {
        n: s["status"] for n, s in record["steps"].items()
    }
    assert again["steps"]["scan"]["output"] == record["steps"]["scan"]["output"]
