"""Kill a real ``devskyy`` at each failpoint (``os._exit(137)``, as ``kill -9``) and check the
guarantee that rests on that write: a whole revision with its audit event, a verifiable
audit chain, a resumable run that never re-runs a recorded success.

The commerce failpoints (order, charge, payment, ledger) are in
``tests/test_failpoints_commerce.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devskyy.adapters import failpoints
from devskyy.adapters.db import open_engine
from devskyy.adapters.run_store import SqlRunStore
from devskyy.model.runs import RunStatus, StepStatus

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def devskyy(
    state_url: str, cwd: Path, *args: str, fail: str = "", extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess; ``fail`` arms failpoints for it."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "DEVSKYY_ALLOWED_MODULES": "fake_workflow_agents",
        "NO_COLOR": "1",
        **(extra_env or {}),
    }
    env.pop(failpoints.ENV, None)
    if fail:
        env[failpoints.ENV] = fail
    return subprocess.run(
        [sys.executable, "-m", "devskyy.cli", "--state", state_url, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def killed(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == failpoints.EXIT_STATUS, (done.returncode, done.stderr)


def test_every_failpoint_is_placed_in_the_code() -> None:
    placed: set[str] = set()
    for path in (ROOT / "devskyy").rglob("*.py"):
        placed |= set(re.findall(r'failpoints\.hit\("([a-z_.]+)"\)', path.read_text()))
    assert placed == set(failpoints.FAILPOINTS)


def test_an_unarmed_or_other_failpoint_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(failpoints.ENV, "apply.committed:2, run.created")
    failpoints.reload()
    try:
        failpoints.hit("apply.writing")  # not armed
        failpoints.hit("apply.committed")  # armed for the second hit only
        assert [failpoints.armed(n) for n in ("apply.writing", "apply.committed")] == [
            False,
            True,
        ]
    finally:
        monkeypatch.delenv(failpoints.ENV)
        failpoints.reload()


def _manifests(tmp_path: Path, replicas: int = 1) -> Path:
    folder = tmp_path / "manifests"
    folder.mkdir(exist_ok=True)
    (folder / "a.yaml").write_text(
        "apiVersion: devskyy.dev/v1\nkind: Agent\nmetadata: {name: worker}\n"
        f"spec: {{module: 'fake_workflow_agents:StepAgent', replicas: {replicas}}}\n"
    )
    return folder


def _history(state_url: str, cwd: Path) -> list[str]:
    out = ok(devskyy(state_url, cwd, "history"))
    return [line.split()[0] for line in out.splitlines()[1:]]


def _verify(state_url: str, cwd: Path) -> str:
    return ok(devskyy(state_url, cwd, "audit", "--verify")).strip()


def test_a_kill_inside_the_apply_transaction_leaves_nothing(tmp_path: Path, state_url: str) -> None:
    folder = _manifests(tmp_path)
    killed(devskyy(state_url, tmp_path, "apply", str(folder), fail="apply.writing"))
    assert _history(state_url, tmp_path) == []
    assert ok(devskyy(state_url, tmp_path, "get", "agents")).startswith("No agents")
    assert _verify(state_url, tmp_path).startswith("audit log intact: 0 event(s)")
    ok(devskyy(state_url, tmp_path, "apply", str(folder)))
    assert _history(state_url, tmp_path) == ["1"]
    assert _verify(state_url, tmp_path).startswith("audit log intact: 1 event(s)")


@pytest.mark.parametrize("command", ["apply", "rollback"])
def test_a_kill_right_after_the_commit_leaves_the_revision_with_its_event(
    tmp_path: Path, state_url: str, command: str
) -> None:
    folder = _manifests(tmp_path)
    ok(devskyy(state_url, tmp_path, "apply", str(folder)))
    _manifests(tmp_path, replicas=2)
    args = ["apply", str(folder)] if command == "apply" else ["rollback", "1"]
    if command == "rollback":
        ok(devskyy(state_url, tmp_path, "apply", str(folder)))
    killed(devskyy(state_url, tmp_path, *args, fail="apply.committed"))
    revisions = _history(state_url, tmp_path)
    assert revisions == (["1", "2"] if command == "apply" else ["1", "2", "3"])
    # Every revision has its event: verify checks both the chain and one event per revision.
    assert _verify(state_url, tmp_path).startswith(f"audit log intact: {len(revisions)} event(s)")


def test_a_kill_right_after_an_audit_append_keeps_the_chain(tmp_path: Path, state_url: str) -> None:
    ok(devskyy(state_url, tmp_path, "keys", "create", "ops", "--role", "admin"))
    killed(
        devskyy(
            state_url, tmp_path, "keys", "create", "bob", "--role", "guest", fail="audit.appended"
        )
    )
    assert _verify(state_url, tmp_path).startswith("audit log intact: 2 event(s)")
    listed = ok(devskyy(state_url, tmp_path, "keys", "list"))
    assert "bob" in listed


WORKFLOW = """\
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {name: three}
spec:
  steps:
    - {name: first, agent: first, input: {label: one}}
    - {name: second, agent: second, needs: [first], input: {label: two}}
    - {name: third, agent: third, needs: [second], input: {label: three}}
"""
AGENT = """\
---
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {name: NAME}
spec:
  module: fake_workflow_agents:StepAgent
  config: {count_file: "COUNT", sleep_seconds: 0.05}
"""
STEPS = ("first", "second", "third")


def _calls(count: Path) -> list[str]:
    return count.read_text().split() if count.exists() else []


@pytest.mark.parametrize(
    ("fail", "recorded"),
    [
        ("run.created", 0),
        ("run.step_recorded", 1),
        ("run.step_recorded:2", 2),
        ("run.step_recorded:3", 3),
    ],
)
def test_a_run_killed_after_a_durable_write_resumes_without_repeating_a_step(
    tmp_path: Path, state_url: str, fail: str, recorded: int
) -> None:
    count = tmp_path / "count.txt"
    folder = tmp_path / "manifests"
    folder.mkdir()
    agents = "".join(AGENT.replace("NAME", n).replace("COUNT", str(count)) for n in STEPS)
    (folder / "wf.yaml").write_text(WORKFLOW + agents)
    ok(devskyy(state_url, tmp_path, "apply", str(folder)))
    killed(devskyy(state_url, tmp_path, "run", "three", fail=fail))

    engine = open_engine(state_url)
    try:
        (run,) = SqlRunStore(engine).list_runs(workflow="three")
        done = [s.name for s in run.steps if s.status is StepStatus.SUCCEEDED]
        assert run.status in (RunStatus.PENDING, RunStatus.RUNNING)
        # Killed right after the write that recorded the N-th success.
        assert done == list(STEPS[:recorded])
        ok(devskyy(state_url, tmp_path, "runs", "resume", run.id))
        after = SqlRunStore(engine).get(run.id)
    finally:
        engine.dispose()
    assert after.status is RunStatus.SUCCEEDED
    assert [s.status for s in after.steps] == [StepStatus.SUCCEEDED] * 3
    calls = _calls(count)
    assert set(calls) == set(STEPS)
    assert [calls.count(step) for step in done] == [1] * len(done)  # never re-run


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_a_fix_killed_after_its_backup_resumes_and_restores(tmp_path: Path, state_url: str) -> None:
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    project = tmp_path / "proj"
    shutil.copytree(ROOT / "examples" / "sample_project", project)
    originals = _tree_bytes(project)
    ok(devskyy(state_url, tmp_path, "apply", str(tmp_path / "manifests")))
    params = ["-p", f"target_path={project}"]
    killed(devskyy(state_url, tmp_path, "run", "scan_and_fix", *params, fail="backup.recorded"))
    assert _tree_bytes(project) == originals  # the backup is written before any fix
    engine = open_engine(state_url)
    try:
        (run,) = SqlRunStore(engine).list_runs(workflow="scan_and_fix")
    finally:
        engine.dispose()
    # The step never recorded its output, yet restore finds the backup by the run id.
    assert "Restored" in ok(devskyy(state_url, tmp_path, "restore", run.id))
    ok(devskyy(state_url, tmp_path, "runs", "resume", run.id))
    assert _tree_bytes(project) != originals  # the resumed fix step wrote its fixes
    # Backups live beside the store (state.db is in tmp_path).
    backups = sorted(p.name for p in (tmp_path / "backups").iterdir())
    assert backups == [f"{run.id}-fix"]  # the re-run reused its first attempt's backup
    ok(devskyy(state_url, tmp_path, "restore", run.id))
    assert _tree_bytes(project) == originals
