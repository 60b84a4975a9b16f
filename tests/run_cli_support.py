"""Helpers of the ``devskyy run`` / ``runs`` CLI tests: apply a tree, invoke, read calls.

The trees use ``fake_workflow_agents`` (its agents append each call to a count file).
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from devskyy.cli import main


def cli(state_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--state", state_url, *args])


def calls(count_file: Path) -> list[str]:
    """The agents' calls, in order (one line each)."""
    return count_file.read_text().splitlines() if count_file.exists() else []


def apply_tree(
    tmp_path: Path,
    state_url: str,
    manifests: str,
    count_file: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """Apply ``manifests`` (``COUNT`` replaced by the count file); the state URL."""
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "all.yaml").write_text(manifests.replace("COUNT", str(count_file)))
    result = cli(state_url, "apply", str(folder))
    assert result.exit_code == 0, result.output
    return state_url


def dead_owner() -> str:
    """An owner ``host:pid`` whose process has ended (its runs are interrupted)."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return f"{socket.gethostname()}:{child.stdout.strip()}"
