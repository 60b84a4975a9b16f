"""Shell completion through click's completion API (the protocol the scripts speak).

Before, the lazy group handed click empty stubs while completing, so completion stopped
at the top-level command names. These tests complete subcommands, options, ``-o``
choices, kinds, and names read from a real SQLite store: agents, workflows, run ids and
key ids, in bash, zsh and fish.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.shell_completion import ShellComplete
from click.testing import CliRunner

from devskyy.adapters.db import open_engine
from devskyy.adapters.run_store import SqlRunStore
from devskyy.cli import main
from devskyy.cli.completion import COMPLETE_VAR
from devskyy.model.runs import RunRecord, RunStatus

MANIFESTS = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {name: scanner}
spec: {module: "devskyy.agents.scanner:ScannerAgent", capabilities: [scan]}
---
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {name: seo}
spec: {module: "devskyy.agents.seo:SeoAgent"}
---
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {name: scan_and_fix}
spec:
  steps: [{name: scan, agent: scanner}]
---
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {name: seo_only}
spec:
  steps: [{name: seo, agent: seo}]
"""


def complete(args: list[str], incomplete: str) -> list[str]:
    """The values click offers for ``devskyy ARGS INCOMPLETE<TAB>``."""
    completer = ShellComplete(main, {}, "devskyy", COMPLETE_VAR)
    return [item.value for item in completer.get_completions(args, incomplete)]


@pytest.fixture
def store(tmp_path: Path, state_url: str) -> str:
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "all.yaml").write_text(MANIFESTS)
    applied = CliRunner().invoke(main, ["--state", state_url, "apply", str(folder)])
    assert applied.exit_code == 0, applied.output
    engine = open_engine(state_url)
    try:
        runs = SqlRunStore(engine)
        runs.create(RunRecord(id="run-aaa111", workflow="scan_and_fix", status=RunStatus.SUCCEEDED))
        runs.create(RunRecord(id="run-bbb222", workflow="seo_only", status=RunStatus.FAILED))
    finally:
        engine.dispose()
    created = CliRunner().invoke(
        main, ["--state", state_url, "keys", "create", "ci-bot", "--role", "operator"]
    )
    assert created.exit_code == 0, created.output
    return state_url


def key_ids(state_url: str) -> list[str]:
    listed = CliRunner().invoke(main, ["--state", state_url, "keys", "list", "-o", "json"])
    assert listed.exit_code == 0, listed.output
    return [k["key_id"] for k in json.loads(listed.stdout)]


def test_top_level_names_and_subcommands() -> None:
    assert complete([], "ru") == ["run", "runs"]
    assert "completion" in complete([], "")
    assert complete(["runs"], "") == ["list", "resume", "show"]
    assert complete(["keys"], "r") == ["revoke", "rotate"]


def test_options_and_output_choices() -> None:
    assert "--output" in complete(["get", "agents"], "--")
    assert "--check-agents" in complete(["validate"], "--c")
    assert complete(["get", "agents", "-o"], "") == ["table", "json", "yaml"]
    assert complete(["runs", "list", "--output"], "j") == ["json"]
    assert complete(["completion"], "") == ["bash", "zsh", "fish"]


def test_kinds_complete_without_a_store() -> None:
    assert complete(["get"], "") == ["agents", "rolebindings", "roles", "workflows"]
    assert complete(["describe"], "ro") == ["rolebindings", "roles"]
    assert complete(["schema"], "r") == ["Role", "RoleBinding"]


def test_names_come_from_live_state(store: str) -> None:
    assert complete(["--state", store, "get", "agents"], "") == ["scanner", "seo"]
    assert complete(["--state", store, "describe", "workflow"], "scan") == ["scan_and_fix"]
    assert complete(["--state", store, "get"], "agent/s") == ["agent/scanner", "agent/seo"]
    assert complete(["--state", store, "run"], "") == ["scan_and_fix", "seo_only"]
    assert complete(["--state", store, "runs", "list", "--workflow"], "seo") == ["seo_only"]
    assert complete(["--state", store, "runs", "show"], "run-a") == ["run-aaa111"]
    assert complete(["--state", store, "runs", "resume"], "") == ["run-bbb222", "run-aaa111"]
    assert complete(["--state", store, "restore"], "run-b") == ["run-bbb222"]
    assert complete(["--state", store, "can-i"], "sc") == ["scanner"]
    (key_id,) = key_ids(store)
    assert complete(["--state", store, "keys", "revoke"], "") == [key_id]
    assert complete(["--state", store, "keys", "rotate"], key_id[:4]) == [key_id]


def test_the_state_comes_from_the_environment_too(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVSKYY_STATE_URL", store)
    assert complete(["run"], "seo") == ["seo_only"]


def test_no_store_completes_nothing_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert complete(["run"], "") == []
    assert complete(["runs", "show"], "") == []
    assert complete(["keys", "revoke"], "") == []
    assert complete(["get", "agents"], "") == []
    assert list(tmp_path.iterdir()) == []  # no .devskyy/ appeared


def test_a_broken_store_completes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "state.db"
    bad.write_text("not a database")
    assert complete(["--state", f"sqlite:///{bad}", "run"], "") == []


@pytest.mark.parametrize(
    ("shell", "env", "expected"),
    [
        (
            "bash",
            {"COMP_WORDS": "devskyy runs sh", "COMP_CWORD": "2"},
            "plain,show\n",
        ),
        (
            "zsh",
            {"COMP_WORDS": "devskyy runs sh", "COMP_CWORD": "2"},
            "plain\nshow\nOne run and its steps.\n",
        ),
        (
            "fish",
            {"COMP_WORDS": "devskyy runs sh", "COMP_CWORD": "sh"},
            "plain,show\tOne run and its steps.\n",
        ),
    ],
)
def test_each_shell_protocol(shell: str, env: dict[str, str], expected: str) -> None:
    result = CliRunner().invoke(
        main, [], prog_name="devskyy", env={COMPLETE_VAR: f"{shell}_complete", **env}
    )
    assert result.exit_code == 0, result.output
    assert result.output == expected


def test_live_names_over_the_bash_protocol(store: str) -> None:
    result = CliRunner().invoke(
        main,
        [],
        prog_name="devskyy",
        env={
            COMPLETE_VAR: "bash_complete",
            "COMP_WORDS": f"devskyy --state {store} get agents s",
            "COMP_CWORD": "5",
        },
    )
    assert result.output == "plain,scanner\nplain,seo\n"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_script(shell: str) -> None:
    result = CliRunner().invoke(main, ["completion", shell])
    assert result.exit_code == 0
    assert COMPLETE_VAR in result.output
    assert f"{shell}_complete" in result.output


def test_completion_refuses_an_unknown_shell() -> None:
    result = CliRunner().invoke(main, ["completion", "tcsh"])
    assert result.exit_code == 2
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in result.output


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_the_bash_script_completes_in_a_real_bash(store: str) -> None:
    devskyy = Path(sys.executable).with_name("devskyy")
    program = f"""
eval "$({devskyy} completion bash)"
COMP_WORDS=(devskyy --state {store} run s)
COMP_CWORD=4
_devskyy_completion devskyy  # bash passes the command name as $1
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    env = {"PATH": f"{devskyy.parent}:/usr/bin:/bin", "NO_COLOR": "1"}
    done = subprocess.run(
        ["bash", "-c", program], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["scan_and_fix", "seo_only"]
