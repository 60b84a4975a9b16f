"""The ``devskyy-validate`` pre-commit hook, run as a user would: ``pre-commit try-repo``.

A scratch git repository of manifests (outside this one) runs the hook from this
checkout, uncommitted changes included; pre-commit builds its own virtualenv with
devskyy in it, so this is the hook exactly as a user's ``.pre-commit-config.yaml`` gets it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PRE_COMMIT = Path(sys.executable).with_name("pre-commit")

AGENT = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: scanner
spec:
  module: devskyy.agents.scanner:ScannerAgent
  capabilities: [scan]
"""

WORKFLOW = """\
apiVersion: devskyy.dev/v1
kind: Workflow
metadata:
  name: nightly
spec:
  steps:
    - name: scan
      agent: {agent}
"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not PRE_COMMIT.exists(), reason="pre-commit is not installed"),
]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def _try_repo(repo: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1"}
    return subprocess.run(
        [
            str(PRE_COMMIT),
            "try-repo",
            str(ROOT),
            "devskyy-validate",
            "--all-files",
            "--color",
            "never",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )


def test_hook_declares_a_whole_tree_check() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert hook["id"] == "devskyy-validate"
    assert hook["entry"] == "devskyy validate"
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is False  # references cross files


@pytest.mark.timeout(240)
def test_try_repo_fails_on_a_broken_reference_and_passes_once_fixed(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "manifests-repo"
    (repo / "manifests" / "agents").mkdir(parents=True)
    (repo / "manifests" / "workflows").mkdir()
    (repo / "manifests" / "agents" / "scanner.yaml").write_text(AGENT)
    broken = repo / "manifests" / "workflows" / "nightly.yaml"
    broken.write_text(WORKFLOW.format(agent="scaner"))
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "manifests")

    home = tmp_path / "pre-commit-home"
    failed = _try_repo(repo, home)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "devskyy validate" in failed.stdout
    assert "Failed" in failed.stdout
    assert (
        "manifests/workflows/nightly.yaml:8:7: spec.steps[0].agent: unknown agent 'scaner'"
        in failed.stdout
    )
    assert "manifests/: 1 problem" in failed.stdout

    broken.write_text(WORKFLOW.format(agent="scanner"))
    _git(repo, "commit", "-qam", "fix the reference")
    passed = _try_repo(repo, home)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "devskyy validate" in passed.stdout
    assert "Passed" in passed.stdout
