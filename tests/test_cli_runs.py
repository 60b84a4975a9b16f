"""``devskyy run`` and ``devskyy runs list|show|resume`` through click's CliRunner."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from run_cli_support import apply_tree, calls, cli, dead_owner

from devskyy.adapters.db import open_engine
from devskyy.adapters.run_store import SqlRunStore
from devskyy.cli.runs import Progress, parse_param
from devskyy.model.runs import (
    RunPatch,
    RunRecord,
    RunStatus,
    RunWrite,
    StepEvent,
    StepRecord,
    StepStatus,
)

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
metadata: {name: broken}
spec:
  module: fake_workflow_agents:StepAgent
  retry: {maxAttempts: 2, initialIntervalSeconds: 0}
  config: {fail: true}
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
metadata: {name: uses-misconfigured}
spec:
  steps:
    - name: only
      agent: misconfigured
---
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {name: demo}
spec:
  params:
    target: {type: string, required: true}
    limit: {type: integer, default: 3}
  steps:
    - name: scan
      agent: echo
      input: {path: "${{ params.target }}", limit: "${{ params.limit }}"}
    - name: fix
      capability: echoing
      needs: [scan]
      input: {files: "${{ steps.scan.output.echo.path }}"}
---
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {name: bad}
spec:
  steps:
    - name: first
      agent: echo
    - name: boom
      agent: broken
      needs: [first]
    - name: undo
      agent: echo
      needs: [boom]
      trigger: any_failed
"""


@pytest.fixture
def count_file(tmp_path: Path) -> Path:
    return tmp_path / "count.txt"


@pytest.fixture
def applied(
    tmp_path: Path, state_url: str, count_file: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    return apply_tree(tmp_path, state_url, MANIFESTS, count_file, monkeypatch)


def test_parse_param_reads_json_else_text() -> None:
    assert parse_param("n=3") == ("n", 3)
    assert parse_param("flag=true") == ("flag", True)
    assert parse_param("tags=[1, 2]") == ("tags", [1, 2])
    assert parse_param('quoted="3"') == ("quoted", "3")
    assert parse_param("path=./src") == ("path", "./src")
    assert parse_param("eq=a=b") == ("eq", "a=b")
    assert parse_param("empty=") == ("empty", "")


def test_run_shows_progress_lines_and_a_summary(applied: str, count_file: Path) -> None:
    result = cli(applied, "run", "demo", "-p", "target=./src", "-p", "limit=5")
    assert result.exit_code == 0, result.output + result.stderr
    lines = result.stdout.splitlines()
    run_id = re.fullmatch(r"run ([0-9a-f]{12}): workflow demo", lines[0])
    assert run_id is not None
    steps = [re.sub(r"\d+\.\d\ds", "T", line) for line in lines[1:-1]]
    assert steps == [
        "  scan                 running    attempt 1",
        "  scan                 succeeded  1 attempt, T",
        "  fix                  running    attempt 1",
        "  fix                  succeeded  1 attempt, T",
    ]
    assert re.fullmatch(rf"run {run_id.group(1)} succeeded in \d+\.\d\ds", lines[-1])
    assert calls(count_file) == ["echo", "echo"]


def test_run_json_prints_the_final_record(applied: str) -> None:
    result = cli(applied, "run", "demo", "-p", "target=./src", "-o", "json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] == "succeeded"
    assert record["workflow"] == "demo"
    assert record["params"] == {"target": "./src", "limit": 3}
    assert set(record["steps"]) == {"scan", "fix"}
    scan, fix = record["steps"]["scan"], record["steps"]["fix"]
    assert (scan["status"], scan["attempts"]) == ("succeeded", 1)
    assert scan["output"] == {"agent": "echo", "echo": {"path": "./src", "limit": 3}}
    assert fix["output"] == {"agent": "echo", "echo": {"files": "./src"}}
    assert isinstance(fix["duration"], float)
    # runs show prints the same record.
    shown = cli(applied, "runs", "show", record["id"], "-o", "json")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout) == record


def test_a_failed_run_exits_1_and_runs_compensation(applied: str, count_file: Path) -> None:
    result = cli(applied, "run", "bad", "-o", "json")
    assert result.exit_code == 1
    record = json.loads(result.stdout)
    assert record["status"] == "failed"
    assert record["error"] == "step(s) failed: boom"
    steps = record["steps"]
    assert {n: (s["status"], s["attempts"]) for n, s in steps.items()} == {
        "first": ("succeeded", 1),
        "boom": ("failed", 2),
        "undo": ("succeeded", 1),
    }
    assert steps["boom"]["error"] == "RuntimeError: broken failed as scripted"
    assert calls(count_file) == ["echo", "echo"]

    table = cli(applied, "run", "bad")
    assert table.exit_code == 1
    assert "  boom                 retry_wait attempt 1 failed: RuntimeError" in table.stdout
    assert table.stdout.splitlines()[-1] == "  step(s) failed: boom"
    failed = [line for line in table.stdout.splitlines() if " failed     " in line]
    assert failed[0].endswith(": RuntimeError: broken failed as scripted (attempt 2 of 2 failed)")


def test_a_workflow_that_is_not_applied_is_a_clear_error(applied: str) -> None:
    result = cli(applied, "run", "nope")
    assert result.exit_code == 1
    assert result.stderr == 'error: workflow "nope" is not applied (run devskyy apply first)\n'
    assert result.stdout == ""


def test_an_empty_store_says_apply_first(state_url: str) -> None:
    result = cli(state_url, "run", "scan_and_fix")
    assert result.exit_code == 1
    assert result.stderr == (
        'error: workflow "scan_and_fix" is not applied (run devskyy apply first)\n'
    )


def test_bad_params_are_refused_before_anything_runs(applied: str, count_file: Path) -> None:
    result = cli(applied, "run", "demo", "-p", "bogus=1", "-p", "limit=many")
    assert result.exit_code == 1
    assert result.stderr == (
        'error: workflow "demo": unknown parameter "bogus" (declared: limit, target); '
        'parameter "limit" must be an integer, not string ("many"); '
        'missing required parameter "target" (string)\n'
    )
    assert calls(count_file) == []
    usage = cli(applied, "run", "demo", "-p", "novalue")
    assert usage.exit_code == 2
    assert "'novalue' is not key=value" in usage.stderr
    assert json.loads(cli(applied, "runs", "list", "-o", "json").stdout) == []


def test_runs_list_and_show(applied: str) -> None:
    first = json.loads(cli(applied, "run", "demo", "-p", "target=a", "-o", "json").stdout)
    second = json.loads(cli(applied, "run", "bad", "-o", "json").stdout)
    listed = json.loads(cli(applied, "runs", "list", "-o", "json").stdout)
    assert [(r["id"], r["status"]) for r in listed] == [
        (second["id"], "failed"),
        (first["id"], "succeeded"),
    ]
    only = json.loads(cli(applied, "runs", "list", "--workflow", "demo", "-o", "json").stdout)
    assert [r["id"] for r in only] == [first["id"]]

    text = cli(applied, "runs", "list").stdout.splitlines()
    assert text[0].split() == ["ID", "WORKFLOW", "STATUS", "SUCCEEDED", "DURATION", "ERROR"]
    assert text[1].split()[:4] == [second["id"], "bad", "failed", "2/3"]
    assert text[2].split()[:4] == [first["id"], "demo", "succeeded", "2/2"]

    shown = cli(applied, "runs", "show", second["id"]).stdout.splitlines()
    assert shown[:3] == [f"run:      {second['id']}", "workflow: bad", "status:   failed"]
    assert shown[-3].split()[:3] == ["first", "succeeded", "1"]
    assert shown[-2].split()[:3] == ["boom", "failed", "2"]

    missing = cli(applied, "runs", "show", "nope")
    assert missing.exit_code == 1
    assert missing.stderr == 'error: run "nope" not found\n'


def test_reading_runs_never_creates_a_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    listed = cli(url, "runs", "list")
    assert (listed.exit_code, listed.stdout) == (0, "no runs\n")
    assert cli(url, "runs", "show", "x").stderr == 'error: run "x" not found\n'
    assert cli(url, "runs", "resume", "x").stderr == 'error: run "x" not found\n'
    assert list(tmp_path.iterdir()) == []
    # A folder that does not exist is a mistake in --state, not an empty store.
    missing = f"sqlite:///{tmp_path / 'none' / 'state.db'}"
    assert cli(missing, "runs", "list").exit_code == 1
    assert not (tmp_path / "none").exists()


def test_a_run_whose_process_died_is_interrupted_and_resumes(
    applied: str, count_file: Path
) -> None:
    engine = open_engine(applied)
    store = SqlRunStore(engine)
    store.create(
        RunRecord(
            id="deadbeef0001",
            workflow="demo",
            params={"target": "./src", "limit": 3},
            status=RunStatus.RUNNING,
            created_at=1.0,
            started_at=1.0,
            owner=dead_owner(),
            heartbeat_at=1.0,
            steps=(StepRecord("scan"), StepRecord("fix")),
        )
    )
    output = {"agent": "echo", "echo": {"path": "./src", "limit": 3}}
    store.write(
        RunWrite(
            "deadbeef0001",
            patch=RunPatch(heartbeat_at=2.0),
            steps=(
                StepRecord("scan", StepStatus.SUCCEEDED, 1, 1.0, 2.0, 1.0, output),
                StepRecord("fix", StepStatus.RUNNING, 1, 2.0),
            ),
            events=(
                StepEvent("scan", StepStatus.RUNNING, 1, 1.0),
                StepEvent("scan", StepStatus.SUCCEEDED, 1, 2.0),
                StepEvent("fix", StepStatus.RUNNING, 1, 2.0),
            ),
        )
    )
    engine.dispose()
    listed = json.loads(cli(applied, "runs", "list", "-o", "json").stdout)
    assert [(r["id"], r["status"]) for r in listed] == [("deadbeef0001", "interrupted")]

    resumed = cli(applied, "runs", "resume", "deadbeef0001")
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.stdout.splitlines()[0] == (
        "resuming run deadbeef0001: workflow demo (1 of 2 steps already succeeded)"
    )
    assert calls(count_file) == ["echo"]  # only fix ran again
    record = json.loads(cli(applied, "runs", "show", "deadbeef0001", "-o", "json").stdout)
    assert record["status"] == "succeeded"
    assert record["steps"]["fix"]["output"] == {"agent": "echo", "echo": {"files": "./src"}}
    assert record["steps"]["fix"]["attempts"] == 2
    again = cli(applied, "runs", "resume", "deadbeef0001")
    assert again.exit_code == 1
    assert again.stderr == 'error: run "deadbeef0001" already succeeded; nothing to resume\n'


def test_an_agent_that_does_not_start_is_reported_and_its_step_fails(applied: str) -> None:
    result = cli(applied, "run", "uses-misconfigured", "-o", "json")
    assert result.exit_code == 1
    warning = result.stderr.splitlines()[0]
    assert warning.startswith('warning: agent "misconfigured" did not start: ')
    step = json.loads(result.stdout)["steps"]["only"]
    assert (step["status"], step["attempts"]) == ("failed", 1)
    assert step["error"] == "NotFound: agent 'misconfigured' is not registered"


def test_progress_lines_show_each_steps_headline(capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress(color=False)
    done = StepRecord(
        "scan", StepStatus.SUCCEEDED, 1, duration=0.5, output={"headline": "22 issues (5 fixable)"}
    )
    quiet = StepRecord("fix", StepStatus.SUCCEEDED, 2, duration=1.25, output={"files": 3})
    progress(None, done)  # type: ignore[arg-type]
    progress(None, quiet)  # type: ignore[arg-type]
    assert capsys.readouterr().out.splitlines() == [
        "  scan                 succeeded  1 attempt, 0.50s: 22 issues (5 fixable)",
        "  fix                  succeeded  2 attempts, 1.25s",
    ]
