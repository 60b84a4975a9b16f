"""One output convention (issue 18.3), checked across the commands a script would call.

``-o table|json|yaml`` wherever data is printed; snake_case field names; every time in
RFC 3339 UTC with ``Z``; ``runs list`` a summary and ``runs show`` the outputs;
``--since`` in RFC 3339 (UTC without an offset); invalid manifests give the problem count
and, with ``-o json``, the problems on stdout; ``-h``; a closed pipe exits 141 in every
format.
"""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from devskyy.adapters.db import open_engine
from devskyy.adapters.logs import configure
from devskyy.adapters.run_store import SqlRunStore
from devskyy.cli import main
from devskyy.core.timefmt import parse_time, rfc3339
from devskyy.model.runs import RunRecord, RunStatus, StepRecord, StepStatus

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
SNAKE = re.compile(r"[a-z][a-z0-9_]*")
AGENT = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {{name: {name}}}
spec: {{module: "devskyy.agents.fixer:FixerAgent", retry: {{maxAttempts: 2}}}}
"""


@pytest.fixture
def store(tmp_path: Path, state_url: str) -> str:
    (tmp_path / "m").mkdir()
    (tmp_path / "m/a.yaml").write_text(AGENT.format(name="a"))
    assert cli(state_url, "apply", str(tmp_path / "m")).exit_code == 0
    (tmp_path / "m/b.yaml").write_text(AGENT.format(name="b"))
    assert cli(state_url, "apply", str(tmp_path / "m")).exit_code == 0
    engine = open_engine(state_url)
    try:
        step = StepRecord(
            "scan", StepStatus.SUCCEEDED, 1, 1_796_000_000.25, 1_796_000_001.5, output={"n": 3}
        )
        SqlRunStore(engine).create(
            RunRecord(
                id="run1",
                workflow="w",
                status=RunStatus.SUCCEEDED,
                created_at=1_796_000_000.0,
                started_at=1_796_000_000.125,
                finished_at=1_796_000_001.5,
                steps=(step,),
            )
        )
    finally:
        engine.dispose()
    assert cli(state_url, "keys", "create", "ci", "--role", "operator").exit_code == 0
    return state_url


def cli(state_url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--state", state_url, *args])


def data_of(result: Result, fmt: str) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if fmt == "json" else yaml.safe_load(result.stdout)


def keys_and_times(data: Any, skip: frozenset[str] = frozenset()) -> tuple[set[str], list[str]]:
    """Every field name (outside ``skip``) and every value of a time-like field."""
    names: set[str] = set()
    times: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            names.add(key)
            if key in skip:
                continue
            timeish = key.endswith("_at") or key in ("created", "expires", "time", "last_used")
            if timeish and isinstance(value, str | float):  # ("created": 2 is a count)
                times.append(value)
            sub_names, sub_times = keys_and_times(value, skip)
            names |= sub_names
            times += sub_times
    elif isinstance(data, list):
        for item in data:
            sub_names, sub_times = keys_and_times(item, skip)
            names |= sub_names
            times += sub_times
    return names, times


DATA_COMMANDS = [
    ("history",),
    ("runs", "list"),
    ("runs", "show", "run1"),
    ("keys", "list"),
    ("audit",),
    ("plan", "{tree}"),
    ("apply", "--dry-run", "{tree}"),
    ("rollback", "--dry-run", "1"),
    ("validate", "{tree}"),
    ("get", "agents"),
    ("describe", "agent", "a"),
    ("migrate", "--check"),
]


@pytest.mark.parametrize("fmt", ["json", "yaml"])
@pytest.mark.parametrize("command", DATA_COMMANDS, ids=" ".join)
def test_every_data_command_speaks_json_and_yaml_in_one_style(
    store: str, tmp_path: Path, command: tuple[str, ...], fmt: str
) -> None:
    args = [a.format(tree=tmp_path / "m") for a in command]
    data = data_of(cli(store, *args, "-o", fmt), fmt)
    # Manifest documents (get, describe, a plan's before/after) keep the manifests' names.
    # validate's counts are keyed by kind (data, not field names).
    documents = frozenset({"before", "after", "spec", "metadata", "counts"})
    names, times = keys_and_times(data, documents)
    names -= {"apiVersion"}
    assert all(SNAKE.fullmatch(n) for n in names), sorted(
        n for n in names if not SNAKE.fullmatch(n)
    )
    assert all(isinstance(t, str) and RFC3339.fullmatch(t) for t in times), times


def test_times_are_the_same_instant_in_every_command(store: str) -> None:
    shown = data_of(cli(store, "runs", "show", "run1", "-o", "json"), "json")
    assert shown["created_at"] == "2026-11-30T00:53:20.000Z"
    assert shown["started_at"] == "2026-11-30T00:53:20.125Z"
    assert shown["steps"]["scan"]["finished_at"] == "2026-11-30T00:53:21.500Z"
    assert rfc3339(1_796_000_000.125) == "2026-11-30T00:53:20.125Z"
    assert parse_time("2026-11-30T00:53:20.125Z").timestamp() == 1_796_000_000.125


def test_runs_list_is_a_summary_and_runs_show_has_the_outputs(store: str) -> None:
    (listed,) = data_of(cli(store, "runs", "list", "-o", "json"), "json")
    assert listed == {
        "id": "run1",
        "workflow": "w",
        "status": "succeeded",
        "params": {},
        "created_at": "2026-11-30T00:53:20.000Z",
        "started_at": "2026-11-30T00:53:20.125Z",
        "finished_at": "2026-11-30T00:53:21.500Z",
        "duration": 1.375,
        "error": None,
        "steps_total": 1,
        "steps_succeeded": 1,
    }
    shown = data_of(cli(store, "runs", "show", "run1", "-o", "yaml"), "yaml")
    assert shown["steps"]["scan"]["output"] == {"n": 3}


def test_since_takes_rfc3339_and_a_zoneless_time_is_utc(store: str) -> None:
    events = data_of(cli(store, "audit", "-o", "json"), "json")
    assert events
    first = parse_time(min(e["time"] for e in events))
    zoneless = first.strftime("%Y-%m-%dT%H:%M:%S")
    with_z = first.strftime("%Y-%m-%dT%H:%M:%SZ")
    in_paris = first.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Paris")).isoformat()
    counts = {
        len(data_of(cli(store, "audit", "--since", when, "-o", "json"), "json"))
        for when in (zoneless, with_z, in_paris)
    }
    assert counts == {len(events)}
    later = data_of(cli(store, "audit", "--since", "2999-01-01", "-o", "json"), "json")
    assert later == []
    bad = cli(store, "audit", "--since", "yesterday")
    assert bad.exit_code == 2
    assert "'yesterday' is not an RFC 3339 time" in bad.stderr


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_invalid_manifests_give_the_count_and_json_problems(
    state_url: str, tmp_path: Path, command: str
) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m/a.yaml").write_text(AGENT.format(name="a").replace("maxAttempts: 2", "x: 1"))
    tree = str(tmp_path / "m")
    plain = cli(state_url, command, tree)
    assert plain.exit_code == 1
    assert plain.stdout == ""
    assert plain.stderr.splitlines()[-1] == f"{tree}: 1 problem"
    as_json = cli(state_url, command, tree, "-o", "json")
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert report["path"] == tree
    assert report["valid"] is False
    assert [(p["file"], p["path"]) for p in report["problems"]] == [
        (f"{tree}/a.yaml", "spec.retry.x")
    ]
    assert as_json.stderr == f"{tree}: 1 problem\n"


def test_validate_offers_table_json_yaml(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(AGENT.format(name="a"))
    runner = CliRunner()
    table = runner.invoke(main, ["validate", str(tmp_path)])
    assert table.stdout == f"{tmp_path}: 0 roles, 0 role bindings, 1 agent, 0 workflows: valid\n"
    assert runner.invoke(main, ["validate", str(tmp_path), "-o", "text"]).stdout == table.stdout
    as_yaml = yaml.safe_load(runner.invoke(main, ["validate", str(tmp_path), "-o", "yaml"]).stdout)
    assert as_yaml["valid"] is True
    assert as_yaml["counts"]["Agent"] == 1


def test_discover_writes_with_output_dir_not_o(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["discover", str(tmp_path), "-o", "x"])
    assert result.exit_code == 2
    assert "No such option '-o'" in result.stderr


@pytest.mark.parametrize("command", [["--help"], ["get", "--help"], ["runs", "show", "--help"]])
def test_h_is_help(command: list[str]) -> None:
    short = CliRunner().invoke(main, [*command[:-1], "-h"])
    long = CliRunner().invoke(main, command)
    assert short.exit_code == long.exit_code == 0
    assert short.stdout == long.stdout
    assert "Usage: " in short.stdout


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["table", "json", "yaml"])
def test_a_closed_pipe_exits_141_in_every_format(store: str, fmt: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "devskyy.cli", "--state", store, "history", "-o", fmt],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before a byte is written
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 141
    assert err == b""


def test_json_log_lines_use_the_same_time_format() -> None:
    stream = io.StringIO()
    configure("json", stream=stream)
    try:
        logging.getLogger("devskyy.test").info("hello")
    finally:
        configure("text")
    assert RFC3339.fullmatch(json.loads(stream.getvalue())["time"])
