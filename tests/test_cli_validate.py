"""``devskyy validate`` and ``devskyy schema`` through click's CliRunner and a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from devskyy.cli import main
from devskyy.model.manifests import KINDS
from devskyy.model.schemas import render

ROOT = Path(__file__).resolve().parents[1]

AGENT = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: {name}
spec:
  module: devskyy.agents.{name}:Agent
  dependencies: [{deps}]
"""

WORKFLOW = """\
apiVersion: devskyy.dev/v1
kind: Workflow
metadata:
  name: flow
spec:
  steps:
    - name: one
      agent: a
"""

ROLE = """\
apiVersion: devskyy.dev/v1
kind: Role
metadata:
  name: reader
spec:
  rules:
    - resources: [agents]
      permissions: [read]
---
apiVersion: devskyy.dev/v1
kind: RoleBinding
metadata:
  name: readers
spec:
  role: reader
  subjects:
    - {kind: User, name: alice}
"""


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A valid tree in ``manifests/`` under a fresh current directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "manifests" / "agents").mkdir(parents=True)
    (tmp_path / "manifests" / "workflows").mkdir()
    (tmp_path / "manifests" / "roles").mkdir()
    (tmp_path / "manifests/agents/a.yaml").write_text(AGENT.format(name="a", deps=""))
    (tmp_path / "manifests/agents/b.yml").write_text(AGENT.format(name="b", deps="a"))
    (tmp_path / "manifests/workflows/flow.yaml").write_text(WORKFLOW)
    (tmp_path / "manifests/roles/reader.yaml").write_text(ROLE)
    (tmp_path / "manifests/README.md").write_text("not a manifest")
    return tmp_path / "manifests"


def test_clean_tree_prints_a_one_line_summary(tree: Path) -> None:
    result = invoke("validate")
    assert result.exit_code == 0
    assert result.stdout == "manifests/: 1 role, 1 role binding, 2 agents, 1 workflow: valid\n"
    assert result.stderr == ""


def test_path_argument_and_a_single_file(tree: Path) -> None:
    result = invoke("validate", "manifests/agents")
    assert (result.exit_code, result.stdout) == (
        0,
        "manifests/agents: 0 roles, 0 role bindings, 2 agents, 0 workflows: valid\n",
    )
    result = invoke("validate", "manifests/agents/a.yaml")
    assert (result.exit_code, result.stdout) == (
        0,
        "manifests/agents/a.yaml: 0 roles, 0 role bindings, 1 agent, 0 workflows: valid\n",
    )


def test_every_problem_at_once_on_stderr_and_exit_1(tree: Path) -> None:
    (tree / "agents/b.yml").write_text(AGENT.format(name="b", deps="a, ghost"))
    (tree / "agents/c.yaml").write_text(
        AGENT.format(name="c", deps="").replace("Agent\n", "Agnt\n", 1)
    )
    (tree / "workflows/flow.yaml").write_text(
        WORKFLOW.replace("agent: a", "agent: a\n      needs: [zero]")
    )
    result = invoke("validate")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "manifests/agents/b.yml:7:21: spec.dependencies[1]: unknown agent 'ghost'\n"
        "manifests/agents/c.yaml:2:1: kind: unknown kind 'Agnt'; 'kind' must be one of "
        "Agent, Workflow, Role, RoleBinding\n"
        "manifests/workflows/flow.yaml:9:15: spec.steps[0].needs[0]: unknown step 'zero'\n"
        "manifests/: 3 problems\n"
    )
    assert "Traceback" not in result.output


def test_json_output_for_machines(tree: Path) -> None:
    result = invoke("validate", "-o", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "path": "manifests/",
        "valid": True,
        "counts": {"Role": 1, "RoleBinding": 1, "Agent": 2, "Workflow": 1},
        "problems": [],
    }
    (tree / "agents/a.yaml").write_text("a: [\n")
    result = invoke("validate", "-o", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["problems"] == [
        {
            "file": "manifests/agents/a.yaml",
            "line": 2,
            "column": 1,
            "path": "a[0]",
            "message": "invalid YAML: while parsing a flow node: did not find expected node "
            "content",
        },
        {
            "file": "manifests/agents/b.yml",
            "line": 7,
            "column": 18,
            "path": "spec.dependencies[0]",
            "message": "unknown agent 'a' "
            "(perhaps a consequence of the broken manifests/agents/a.yaml above)",
        },
        {
            "file": "manifests/workflows/flow.yaml",
            "line": 8,
            "column": 7,
            "path": "spec.steps[0].agent",
            "message": "unknown agent 'a' "
            "(perhaps a consequence of the broken manifests/agents/a.yaml above)",
        },
    ]


def test_allowed_modules_setting(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tree / "agents/a.yaml").write_text(
        AGENT.format(name="a", deps="").replace("devskyy.agents.a", "acme.bots.a")
    )
    result = invoke("validate")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "manifests/agents/a.yaml:6:3: spec.module: module 'acme.bots.a:Agent' is outside the "
        "allowed prefixes (devskyy.agents); add its package to DEVSKYY_ALLOWED_MODULES"
    )
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "acme.bots")
    assert invoke("validate").exit_code == 0


@pytest.mark.parametrize(
    ("setup", "arg", "expected"),
    [
        (None, "missing", "missing:1:1: <file>: no such file or directory\nmissing: 1 problem\n"),
        (
            "empty",
            "empty",
            "empty:1:1: <file>: no manifests found (*.yaml or *.yml files)\nempty: 1 problem\n",
        ),
        (
            "dangling",
            "dangling",
            "dangling/x.yaml:1:1: <file>: cannot read file: No such file or directory\n"
            "dangling: 1 problem\n",
        ),
        (
            "binary",
            "binary",
            "binary/x.yaml:1:1: <file>: not valid UTF-8 (byte 0x89)\nbinary: 1 problem\n",
        ),
    ],
)
def test_bad_input_never_shows_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setup: str | None, arg: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    if setup:
        (tmp_path / setup).mkdir()
    if setup == "dangling":
        (tmp_path / "dangling/x.yaml").symlink_to(tmp_path / "nowhere.yaml")
    if setup == "binary":
        (tmp_path / "binary/x.yaml").write_bytes(b"\x89PNG\r\n\x1a\n")
    result = invoke("validate", arg)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", expected)


def test_paths_outside_the_current_directory_print_as_given(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (tree / "agents/b.yml").write_text(AGENT.format(name="b", deps="ghost"))
    result = invoke("validate", str(tree / "agents"))
    assert result.stderr.splitlines()[0] == (
        f"{tree.as_posix()}/agents/b.yml:7:18: spec.dependencies[0]: unknown agent 'ghost'"
    )
    result = invoke("validate", "../manifests/agents")
    assert result.stderr.splitlines()[0] == (
        "../manifests/agents/b.yml:7:18: spec.dependencies[0]: unknown agent 'ghost'"
    )


def test_shipped_tree_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = invoke("validate")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("manifests/: ")
    assert result.stdout.endswith(" workflows: valid\n")


def test_schema_of_one_kind_is_the_committed_file() -> None:
    for kind in KINDS:
        for spelling in (kind, kind.lower()):
            result = invoke("schema", spelling)
            assert result.exit_code == 0
            assert result.stdout == render(kind)
            assert result.stdout == (ROOT / "schemas" / f"{kind.lower()}.json").read_text()


def test_schema_of_every_kind_keyed_by_kind() -> None:
    result = invoke("schema")
    assert result.exit_code == 0
    everything = json.loads(result.stdout)
    assert sorted(everything) == sorted(KINDS)
    assert everything["Agent"] == json.loads(render("Agent"))


def test_schema_of_an_unknown_kind() -> None:
    result = invoke("schema", "Pod")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        "error: unknown kind 'Pod'; choose one of Agent, Workflow, Role, RoleBinding\n",
    )


def _command() -> list[str]:
    script = Path(sys.executable).with_name("devskyy")
    found = shutil.which("devskyy", path=str(script.parent))
    return [found] if found else [sys.executable, "-m", "devskyy.cli"]


@pytest.mark.slow
def test_through_a_real_process(tree: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVSKYY_")}
    ok = subprocess.run(
        [*_command(), "validate"], capture_output=True, text=True, env=env, check=False
    )
    assert (ok.returncode, ok.stdout, ok.stderr) == (
        0,
        "manifests/: 1 role, 1 role binding, 2 agents, 1 workflow: valid\n",
        "",
    )
    (tree / "agents/a.yaml").write_text("kind: Agent\nkind: Agent\n")
    bad = subprocess.run(
        [sys.executable, "-m", "devskyy.cli", "validate", "manifests/agents/a.yaml"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert (bad.returncode, bad.stdout, bad.stderr) == (
        1,
        "",
        "manifests/agents/a.yaml:2:1: kind: duplicate key 'kind' (first defined at line 1, "
        "column 1)\nmanifests/agents/a.yaml: 1 problem\n",
    )
