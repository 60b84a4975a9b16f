"""A real ``kill -9`` in the middle of ``devskyy run``, then ``devskyy runs resume``.

The workflow's second step blocks until a file appears. The test starts ``devskyy run``
in a subprocess, waits until the first step's result is in the store and the second is
running, kills the process with SIGKILL, checks that the run now shows as interrupted,
lets the second step go, and resumes the run in another subprocess. Every agent call
appends a line to a file, so the test counts executions across the processes: the first
step ran exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from devskyy.adapters.db import open_engine
from devskyy.adapters.run_store import SqlRunStore
from devskyy.cli import main

TESTS = Path(__file__).resolve().parent

MANIFESTS = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {name: first-agent}
spec:
  module: fake_workflow_agents:StepAgent
  config: {count_file: "COUNT"}
---
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {name: blocker}
spec:
  module: fake_workflow_agents:StepAgent
  config: {count_file: "COUNT", wait_for: "RELEASE"}
---
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {name: third-agent}
spec:
  module: fake_workflow_agents:StepAgent
  config: {count_file: "COUNT"}
---
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {name: three}
spec:
  params:
    label: {type: string, default: "x"}
  steps:
    - name: first
      agent: first-agent
      input: {label: "${{ params.label }}"}
    - name: second
      agent: blocker
      needs: [first]
      input: {from_first: "${{ steps.first.output.echo.label }}"}
    - name: third
      agent: third-agent
      needs: [second]
"""


def wait_until(predicate: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    """Poll a condition on another process (synchronisation, not simulated time)."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def applied_three_steps(
    tmp_path: Path, state_url: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Path, dict[str, str]]:
    """Apply the three-step workflow; returns (count file, release file, child env)."""
    count, release = tmp_path / "count.txt", tmp_path / "release"
    folder = tmp_path / "manifests"
    folder.mkdir()
    text = MANIFESTS.replace("COUNT", str(count)).replace("RELEASE", str(release))
    (folder / "three.yaml").write_text(text)
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    applied = CliRunner().invoke(main, ["--state", state_url, "apply", str(folder)])
    assert applied.exit_code == 0, applied.output
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "DEVSKYY_ALLOWED_MODULES": "fake_workflow_agents",
        "PYTHONUNBUFFERED": "1",
    }
    return count, release, env


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_does_not_rerun_finished_steps(
    tmp_path: Path, state_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    count, release, env = applied_three_steps(tmp_path, state_url, monkeypatch)
    command = [sys.executable, "-m", "devskyy.cli", "--state", state_url]
    proc = subprocess.Popen(
        [*command, "run", "three", "-p", "label=hello"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    engine = open_engine(state_url)
    store = SqlRunStore(engine)
    try:

        def second_running() -> bool:
            runs = store.list_runs(workflow="three")
            if not runs:
                return False
            steps = {s.name: s.status.value for s in runs[0].steps}
            return steps["first"] == "succeeded" and steps["second"] == "running"

        wait_until(second_running, "the first step to be recorded and the second to start")
        wait_until(lambda: "blocker" in count.read_text(), "the blocker to be called")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert count.read_text().splitlines() == ["first-agent", "blocker"]

    listed = subprocess.run(
        [*command, "runs", "list", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    [run] = json.loads(listed.stdout)  # runs list is a summary; runs show has the steps
    assert run["status"] == "interrupted"
    shown = subprocess.run(
        [*command, "runs", "show", run["id"], "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    run = json.loads(shown.stdout)
    assert run["status"] == "interrupted"
    assert run["steps"]["first"]["status"] == "succeeded"
    assert run["steps"]["second"]["status"] == "running"
    assert run["steps"]["third"]["status"] == "pending"

    release.touch()
    resumed = subprocess.run(
        [*command, "runs", "resume", run["id"], "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    record = json.loads(resumed.stdout)
    assert record["status"] == "succeeded"
    # The first step ran once (before the kill); the second ran again, then the third.
    assert count.read_text().splitlines() == ["first-agent", "blocker", "blocker", "third-agent"]
    steps = record["steps"]
    assert {name: (s["status"], s["attempts"]) for name, s in steps.items()} == {
        "first": ("succeeded", 1),
        "second": ("succeeded", 2),
        "third": ("succeeded", 1),
    }
    assert steps["second"]["output"] == {"agent": "blocker", "echo": {"from_first": "hello"}}
    stored = store.get(run["id"])
    assert stored.status.value == "succeeded"
    assert stored.owner != run["owner"]
    engine.dispose()
