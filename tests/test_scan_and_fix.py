"""The scan_and_fix workflow end to end: the shipped manifests applied to a fresh store,
run by the workflow engine on a copy of the sample project, then ``devskyy restore``."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from codecheck_helpers import ROOT, SAMPLE, copy_sample, digest, tree_bytes

from devskyy.cli import main
from devskyy.model.runs import RunRecord
from devskyy.runtime.system import open_system
from devskyy.runtime.workflows import to_guide_shape

MANIFESTS = [
    "agents/scanner.yaml",
    "agents/fixer.yaml",
    "agents/security.yaml",
    "agents/verifier.yaml",
    "workflows/scan_and_fix.yaml",
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder as in the quick start: manifests applied, the sample copied in."""
    monkeypatch.chdir(tmp_path)
    for rel in MANIFESTS:
        (tmp_path / "manifests" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "manifests" / rel, tmp_path / "manifests" / rel)
    result = cli("apply", "manifests")
    assert result.exit_code == 0, result.output
    copy_sample(tmp_path / ".devskyy")
    return tmp_path


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def run(params: dict[str, Any]) -> RunRecord:
    async def go() -> RunRecord:
        async with await open_system() as system:
            assert system.workflows is not None
            return await system.workflows.run("scan_and_fix", params)

    return asyncio.run(go())


def statuses(record: RunRecord) -> dict[str, str]:
    return {s.name: s.status.value for s in record.steps}


TARGET = {"target_path": ".devskyy/sample_project"}


def test_scan_and_fix_end_to_end_then_restore(workdir: Path) -> None:
    project = workdir / ".devskyy" / "sample_project"
    original = tree_bytes(project)
    record = run(TARGET)
    shape = to_guide_shape(record)
    assert (shape["status"], shape["errors"]) == ("completed", [])
    assert statuses(record) == {
        "security": "succeeded",
        "scan": "succeeded",
        "verify_before": "succeeded",
        "fix": "succeeded",
        "verify_after": "succeeded",
        "restore": "skipped",
        "rescan": "succeeded",
    }
    assert shape["verify_before"] == {
        "ran": False,
        "passed": None,
        "reason": "no verify_command",
        "headline": "not run: no verify_command",
    }
    assert shape["security"]["counts"]["total"] == 5
    assert shape["scan"]["counts"]["fixable"] == 4
    assert shape["fix"]["files_fixed"] == 2
    assert shape["fix"]["remaining_counts"]["fixable"] == 0
    comparison = shape["rescan"]["comparison"]
    assert (comparison["before"]["total"], comparison["after"]["total"]) == (22, 19)
    assert (comparison["before"]["fixable"], comparison["after"]["fixable"]) == (4, 0)
    # The fixer's remaining numbers are the rescan's.
    assert shape["fix"]["remaining_counts"] == comparison["after"]
    backup_path = Path(shape["fix"]["backup_path"])
    assert backup_path.parent == workdir / ".devskyy" / "backups"
    now = tree_bytes(project)
    assert {k for k in now if now[k] != original[k]} == {
        "inventory/report.py",
        "inventory/store.py",
    }

    # A second run finds nothing fixable: fix and rescan are skipped, nothing changes.
    again = run(TARGET)
    assert statuses(again) == {
        "security": "succeeded",
        "scan": "succeeded",
        "verify_before": "skipped",
        "fix": "skipped",
        "verify_after": "skipped",
        "restore": "skipped",
        "rescan": "skipped",
    }
    assert to_guide_shape(again)["scan"]["counts"]["total"] == 19
    assert tree_bytes(project) == now

    # devskyy restore RUN_ID puts every byte back; a run without a backup says why.
    restored = cli("restore", record.id)
    assert restored.exit_code == 0, restored.output
    assert restored.output == (
        f"Restored 2 file(s) under {project}\n"
        f"from {backup_path}\n"
        "FILE\n"
        "inventory/report.py\n"
        "inventory/store.py\n"
    )
    assert digest(tree_bytes(project)) == digest(original)
    refused = cli("restore", again.id)
    assert refused.exit_code == 1
    assert refused.output == (
        f'error: run "{again.id}" made no fixer backup (its fix step was skipped, failed, '
        "was a dry run, or ran without create_backup)\n"
    )


def test_dry_run_workflow_changes_nothing(workdir: Path) -> None:
    project = workdir / ".devskyy" / "sample_project"
    original = tree_bytes(project)
    record = run({**TARGET, "dry_run": True})
    shape = to_guide_shape(record)
    assert shape["status"] == "completed"
    assert shape["fix"]["backup_path"] is None
    assert sorted(shape["fix"]["diffs"]) == ["inventory/report.py", "inventory/store.py"]
    assert shape["rescan"]["comparison"]["change"]["total"] == 0
    assert tree_bytes(project) == original
    assert not (workdir / ".devskyy" / "backups").exists()


def test_fresh_copies_give_the_same_result(workdir: Path) -> None:
    first = to_guide_shape(run(TARGET))
    project = workdir / ".devskyy" / "sample_project"
    fixed = tree_bytes(project)
    shutil.rmtree(project)
    shutil.copytree(SAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    second = to_guide_shape(run(TARGET))
    assert tree_bytes(project) == fixed
    for step in ("security", "scan", "rescan"):
        assert first[step]["issues"] == second[step]["issues"]
    assert first["fix"]["fixes_applied"] == second["fix"]["fixes_applied"]


def test_target_outside_allowed_roots_fails_the_run(workdir: Path, tmp_path: Path) -> None:
    record = run({"target_path": "/"})
    shape = to_guide_shape(record)
    assert shape["status"] == "failed"
    assert shape["errors"][0] == (
        f"security: PermanentError: target_path / is outside the allowed roots of agent"
        f" security: {workdir}; to allow it, add / (or a folder above it) to"
        " spec.config.allowedRoots in the manifests of the agents scanner, fixer, security,"
        " verifier (manifests/agents/<name>.yaml), then run devskyy apply"
    )


def test_quick_start_command_line(workdir: Path) -> None:
    """The README's quick start: ``devskyy run scan_and_fix -p target_path=…``."""
    project = workdir / ".devskyy" / "sample_project"
    result = cli("run", "scan_and_fix", "-p", "target_path=.devskyy/sample_project", "-o", "json")
    assert result.exit_code == 0, result.output
    run_record = json.loads(result.output)
    assert run_record["status"] == "succeeded"
    steps = run_record["steps"]
    assert {name: step["status"] for name, step in steps.items()} == {
        "security": "succeeded",
        "scan": "succeeded",
        "verify_before": "succeeded",
        "fix": "succeeded",
        "verify_after": "succeeded",
        "restore": "skipped",
        "rescan": "succeeded",
    }
    assert steps["fix"]["output"]["files_fixed"] == 2
    assert steps["rescan"]["output"]["comparison"]["after"]["fixable"] == 0
    restored = cli("restore", run_record["id"], "-o", "json")
    assert restored.exit_code == 0, restored.output
    assert json.loads(restored.output)["files"] == ["inventory/report.py", "inventory/store.py"]
    assert tree_bytes(project) == tree_bytes(SAMPLE)


def test_restore_by_path_and_refusals(workdir: Path) -> None:
    project = workdir / ".devskyy" / "sample_project"
    shape = to_guide_shape(run(TARGET))
    backup_path = shape["fix"]["backup_path"]
    tampered = Path(backup_path) / "files" / "inventory" / "store.py"
    good = tampered.read_bytes()
    tampered.write_bytes(b"tampered")
    refused = cli("restore", backup_path)
    assert refused.exit_code == 1
    assert refused.output == (
        f"error: cannot restore {backup_path}: {tampered.resolve()}: "
        "content does not match the backup's sha256\n"
    )
    assert tree_bytes(project) != tree_bytes(SAMPLE)  # nothing was written
    tampered.write_bytes(good)
    result = cli("restore", backup_path, "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "backup_path": backup_path,
        "root": str(project),
        "files": ["inventory/report.py", "inventory/store.py"],
    }
    assert tree_bytes(project) == tree_bytes(SAMPLE)
    missing = cli("restore", "0123456789ab")
    assert (missing.exit_code, missing.output) == (1, 'error: run "0123456789ab" not found\n')
