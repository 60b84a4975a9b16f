"""Which agents ``devskyy run`` and ``devskyy runs resume`` start, and when (issue 13.5).

``run`` starts the agents of its workflow's first steps before the run and the others
while it runs; one of those that fails is still reported (``warning: agent "x" did not
start: …``) and its step fails with the same error as before. ``runs resume`` starts only
the agents of the run's workflow, a compiled task's included: an unrelated broken agent
says nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import Result
from run_cli_support import apply_tree, calls, cli, dead_owner

from devskyy.adapters.db import open_engine
from devskyy.adapters.run_store import SqlRunStore
from devskyy.core.tasks import TaskRequest
from devskyy.model.runs import RunRecord, RunStatus, StepRecord

MANIFESTS = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {name: echo}
spec:
  module: fake_workflow_agents:StepAgent
  capabilities: [echoing]
  config: {count_file: "COUNT"}
---
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {name: misconfigured}
spec:
  module: fake_workflow_agents:StepAgent
  config: {bogus: 1}
---
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {name: late-misconfigured}
spec:
  steps:
    - name: first
      agent: echo
    - name: second
      agent: misconfigured
      needs: [first]
---
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {name: first-misconfigured}
spec:
  steps:
    - name: second
      agent: misconfigured
---
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {name: echo-twice}
spec:
  steps:
    - name: one
      agent: echo
    - name: two
      agent: echo
      needs: [one]
"""

WARNING = 'warning: agent "misconfigured" did not start: '


@pytest.fixture
def count_file(tmp_path: Path) -> Path:
    return tmp_path / "count.txt"


@pytest.fixture
def applied(
    tmp_path: Path, state_url: str, count_file: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    return apply_tree(tmp_path, state_url, MANIFESTS, count_file, monkeypatch)


def interrupted(state_url: str, run_id: str, workflow: str, params: dict[str, object]) -> None:
    """A run whose owner died before any step ended (``runs resume`` finishes it)."""
    engine = open_engine(state_url)
    try:
        steps = {"echo-twice": ("one", "two")}.get(workflow, ("echo",))
        SqlRunStore(engine).create(
            RunRecord(
                id=run_id,
                workflow=workflow,
                params=params,
                status=RunStatus.RUNNING,
                created_at=1.0,
                started_at=1.0,
                owner=dead_owner(),
                heartbeat_at=1.0,
                steps=tuple(StepRecord(name) for name in steps),
            )
        )
    finally:
        engine.dispose()


def test_an_agent_of_a_later_step_that_does_not_start_is_reported_and_its_step_fails(
    applied: str, count_file: Path
) -> None:
    result = cli(applied, "run", "late-misconfigured", "-o", "json")
    assert result.exit_code == 1
    warnings = result.stderr.splitlines()
    assert len(warnings) == 1
    assert warnings[0].startswith(WARNING)
    assert "bogus" in warnings[0]
    steps = json.loads(result.stdout)["steps"]
    assert (steps["first"]["status"], steps["first"]["attempts"]) == ("succeeded", 1)
    second = steps["second"]
    assert (second["status"], second["attempts"]) == ("failed", 1)
    assert second["error"] == "NotFound: agent 'misconfigured' is not registered"
    assert calls(count_file) == ["echo"]


def failed_lines(result: Result) -> list[str]:
    """The table run's "failed" step lines, durations masked."""
    lines = [line for line in result.stdout.splitlines() if line.split()[1:2] == ["failed"]]
    return [re.sub(r"\d+\.\d\ds", "T", line) for line in lines]


def test_in_a_table_run_as_when_the_agent_of_a_first_step_does_not_start(
    applied: str,
) -> None:
    late = cli(applied, "run", "late-misconfigured")
    first = cli(applied, "run", "first-misconfigured")
    assert (late.exit_code, first.exit_code) == (1, 1)
    # The same warning and the same step line, whichever wave the agent was in.
    assert late.stderr == first.stderr
    assert late.stderr.startswith(WARNING)
    assert len(late.stderr.splitlines()) == 1
    assert failed_lines(late) == failed_lines(first)
    assert failed_lines(late) == [
        "  second               failed     1 attempt, T: NotFound: agent 'misconfigured' "
        "is not registered (NotFound is not retried)"
    ]
    assert any(line.split()[:2] == ["first", "succeeded"] for line in late.stdout.splitlines())


def test_a_run_that_does_not_call_the_broken_agent_says_nothing_of_it(applied: str) -> None:
    result = cli(applied, "run", "echo-twice", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""


def test_resume_starts_only_the_agents_of_the_runs_workflow(applied: str, count_file: Path) -> None:
    interrupted(applied, "deadbeef0002", "echo-twice", {})
    result = cli(applied, "runs", "resume", "deadbeef0002", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""  # "misconfigured" is not this workflow's: not started
    record = json.loads(result.stdout)
    assert record["status"] == "succeeded"
    assert calls(count_file) == ["echo", "echo"]


def test_resume_of_a_task_run_starts_the_agents_its_capabilities_select(
    applied: str, count_file: Path
) -> None:
    request = TaskRequest("echo-task", {"path": "./src"}, ("echoing",))
    interrupted(applied, "deadbeef0003", request.workflow_name, request.as_params())
    result = cli(applied, "runs", "resume", "deadbeef0003", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    record = json.loads(result.stdout)
    assert record["workflow"] == "task:echo-task"
    assert record["status"] == "succeeded"
    assert record["steps"]["echo"]["output"]["echo"] == {"path": "./src"}
    assert calls(count_file) == ["echo"]
