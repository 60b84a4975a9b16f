"""Issue 19.7 (the fixer's part): a fix step killed mid-way keeps a backup that
``devskyy restore RUN_ID`` finds, and a re-run of the step reuses it.

A real ``devskyy run`` is killed (``os._exit(137)``, as ``kill -9``) at the fixer's
failpoints: right after its backup is recorded, and right after its first fixed file is
written. Then ``restore RUN_ID`` puts every original byte back, or ``runs resume``
finishes the fix with the same backup (whose originals are the files before any attempt).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devskyy.adapters import failpoints
from devskyy.adapters.db import open_engine
from devskyy.adapters.run_store import SqlRunStore
from devskyy.model.runs import RunRecord, RunStatus

pytestmark = pytest.mark.slow

UNUSED = b"import os\n\nX = 1\n"
FIXED = b"X = 1\n"
FILES = ("a.py", "b.py", "pkg/c.py")

MANIFESTS = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {name: scanner}
spec:
  module: devskyy.agents.scanner:ScannerAgent
  capabilities: [scan]
  retry: {maxAttempts: 1}
  config: {allowedRoots: ["."]}
---
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {name: fixer}
spec:
  module: devskyy.agents.fixer:FixerAgent
  capabilities: [fix]
  retry: {maxAttempts: 1}
  config: {allowedRoots: ["."]}
---
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {name: fixflow}
spec:
  params:
    target_path: {type: string, required: true}
  steps:
    - name: scan
      agent: scanner
      input: {scan_type: quick, target_path: "${{ params.target_path }}"}
    - name: fix
      agent: fixer
      needs: [scan]
      input:
        scan_results: "${{ steps.scan.output }}"
        target_path: "${{ params.target_path }}"
"""


class Project:
    """A working folder with a store, the fixflow workflow applied, and a tree to fix."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.url = f"sqlite:///{home / 'state' / 'state.db'}"
        self.tree = home / "ws"
        (self.tree / "pkg").mkdir(parents=True)
        for name in FILES:
            (self.tree / name).write_bytes(UNUSED)
        (home / "state").mkdir()
        (home / "manifests").mkdir()
        (home / "manifests" / "fix.yaml").write_text(MANIFESTS)
        done = self.devskyy("apply", "manifests")
        assert done.returncode == 0, done.stderr

    def devskyy(self, *args: str, fail: str = "") -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "NO_COLOR": "1"}
        env.pop(failpoints.ENV, None)
        if fail:
            env[failpoints.ENV] = fail
        return subprocess.run(
            [sys.executable, "-m", "devskyy.cli", "--state", self.url, *args],
            cwd=self.home,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def run_killed_at(self, fail: str) -> RunRecord:
        done = self.devskyy("run", "fixflow", "-p", "target_path=ws", fail=fail)
        assert done.returncode == failpoints.EXIT_STATUS, (done.returncode, done.stderr)
        engine = open_engine(self.url)
        try:
            (run,) = SqlRunStore(engine).list_runs(workflow="fixflow")
        finally:
            engine.dispose()
        assert run.status in (RunStatus.PENDING, RunStatus.RUNNING)
        assert not any(s.output and s.output.get("backup_path") for s in run.steps)
        return run

    def contents(self) -> dict[str, bytes]:
        return {name: (self.tree / name).read_bytes() for name in FILES}

    def backups(self) -> list[Path]:
        folder = self.home / "state" / "backups"
        return sorted(folder.iterdir()) if folder.exists() else []


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


@pytest.mark.parametrize("fail", ["fix.backup_recorded", "fix.file_written", "fix.file_written:2"])
def test_restore_run_id_finds_the_backup_of_a_fix_killed_mid_way(
    project: Project, fail: str
) -> None:
    run = project.run_killed_at(fail)
    written = {"fix.backup_recorded": 0, "fix.file_written": 1, "fix.file_written:2": 2}[fail]
    assert sorted(project.contents().values()).count(FIXED) == written
    [saved] = project.backups()
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["run"] == {"run_id": run.id, "step": "fix"}
    assert sorted(e["path"] for e in manifest["files"]) == sorted(FILES)

    restored = project.devskyy("restore", run.id, "-o", "json")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["files"] == sorted(FILES)
    assert project.contents() == dict.fromkeys(FILES, UNUSED)


def test_a_resumed_fix_reuses_the_backup_of_its_killed_attempt(project: Project) -> None:
    run = project.run_killed_at("fix.file_written")
    [first] = project.backups()
    originals = {p.name: p.read_bytes() for p in (first / "files").rglob("*.py")}

    resumed = project.devskyy("runs", "resume", run.id)
    assert resumed.returncode == 0, resumed.stderr
    assert project.contents() == dict.fromkeys(FILES, FIXED)
    assert project.backups() == [first]  # the same folder, no second backup
    engine = open_engine(project.url)
    try:
        after = SqlRunStore(engine).get(run.id)
    finally:
        engine.dispose()
    assert after.status is RunStatus.SUCCEEDED
    [fix] = [s for s in after.steps if s.name == "fix"]
    assert fix.output is not None
    assert fix.output["backup_path"] == str(first.resolve())
    assert sorted(fix.output["changed_files"]) == sorted(FILES)
    # The backup still holds the files as they were before any attempt.
    assert {p.name: p.read_bytes() for p in (first / "files").rglob("*.py")} == originals
    assert set(originals.values()) == {UNUSED}

    restored = project.devskyy("restore", run.id)
    assert restored.returncode == 0, restored.stderr
    assert project.contents() == dict.fromkeys(FILES, UNUSED)
