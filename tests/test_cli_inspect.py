"""``devskyy get | describe | graph`` over an applied store, and the pure graph rendering."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from planner_strategies import agent, binding, role, rs, workflow

from devskyy.adapters.db import open_engine
from devskyy.adapters.state_store import SqlStateStore
from devskyy.cli import main
from devskyy.cli.inspect import resolve_kind
from devskyy.core.graph import to_dot, to_mermaid
from devskyy.core.plan import plan
from devskyy.errors import DevskyyError
from devskyy.model.plan import ApplyMeta
from devskyy.model.resources import ResourceSet, document

STEPS: list[dict[str, Any]] = [
    {"name": "scan", "agent": "scanner"},
    {"name": "fix", "capability": "fix", "needs": ["scan"]},
    {"name": "undo", "agent": "fixer", "needs": ["fix"], "trigger": "any_failed"},
]

DESIRED = rs(
    agent("scanner", priority="high", capabilities=["scan"]),
    agent("fixer", capabilities=["fix", "backup"], dependencies=["scanner"], replicas=2),
    workflow("scan_and_fix", STEPS, params={"target": {"type": "string"}}),
    role(
        "operator", [{"resources": ["agents", "workflows/*"], "permissions": ["read", "execute"]}]
    ),
    binding("ops", "operator", [("User", "ann"), ("Agent", "fixer")]),
)


@pytest.fixture
def url(state_url: str) -> str:
    engine = open_engine(state_url)
    store = SqlStateStore(engine)
    meta = ApplyMeta(created_at=datetime(2026, 1, 1, tzinfo=UTC), source="manifests/")
    store.apply(plan(DESIRED, store.live()), meta)
    engine.dispose()
    return state_url


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--state", url, *args], catch_exceptions=False)


def test_get_agents_table(url: str) -> None:
    result = run(url, "get", "agents")
    assert result.exit_code == 0
    assert result.stdout == (
        "NAME     PRIORITY  REPLICAS  CAPABILITIES  DEPENDENCIES\n"
        "fixer    medium    2         fix,backup    scanner\n"
        "scanner  high      1         scan          -\n"
    )


def test_get_other_kinds(url: str) -> None:
    assert run(url, "get", "workflows").stdout == (
        "NAME          PRIORITY  STEPS  PARAMS  NEXT-FIRE\n"
        "scan_and_fix  medium    3      target  -\n"
    )
    assert run(url, "get", "roles").stdout == (
        "NAME      RULES\noperator  agents,workflows/*=read,execute\n"
    )
    assert run(url, "get", "rolebindings").stdout == (
        "NAME  ROLE      SUBJECTS              EXTRA-RULES\n"
        "ops   operator  User/ann,Agent/fixer  0\n"
    )


@pytest.mark.parametrize("spelling", ["agents", "agent", "Agent", "AGENTS", "ag"])
def test_kinds_are_spelled_like_kubectl(url: str, spelling: str) -> None:
    assert run(url, "get", spelling).stdout.startswith("NAME     PRIORITY")


def test_get_json_is_the_list_of_applied_documents(url: str) -> None:
    result = run(url, "get", "agents", "-o", "json")
    assert json.loads(result.stdout) == [document(m) for m in DESIRED.agents][::-1]
    data = yaml.safe_load(run(url, "get", "rb", "-o", "yaml").stdout)
    assert data[0]["spec"]["subjects"] == [
        {"kind": "User", "name": "ann"},
        {"kind": "Agent", "name": "fixer"},
    ]


def test_get_one_by_name(url: str) -> None:
    assert run(url, "get", "agent", "scanner").stdout.splitlines()[1].startswith("scanner")
    scanner = DESIRED.get("Agent", "scanner")
    assert scanner is not None
    # One named resource is printed as the object itself (kubectl get pod x -o json).
    assert json.loads(run(url, "get", "agent/scanner", "-o", "json").stdout) == document(scanner)
    missing = run(url, "get", "agent", "ghost")
    assert (missing.exit_code, missing.stderr) == (1, 'error: Agent "ghost" not found\n')


def test_get_on_an_empty_store(state_url: str, tmp_path: Path) -> None:
    assert run(state_url, "get", "workflows").stdout == "No workflows in live state.\n"
    assert run(state_url, "get", "agents", "-o", "json").stdout == "[]\n"
    assert not (tmp_path / "state.db").exists()


def test_unknown_kind(url: str) -> None:
    result = run(url, "get", "pods")
    assert result.exit_code == 1
    assert result.stderr == (
        'error: unknown kind "pods" (expected one of: agents, workflows, roles, rolebindings)\n'
    )


def test_describe(url: str) -> None:
    result = run(url, "describe", "agent", "fixer")
    assert result.exit_code == 0
    head = result.stdout.splitlines()[:8]
    assert head == [
        "Kind:         Agent",
        "Name:         fixer",
        "Labels:       <none>",
        "Annotations:  <none>",
        "Revision:     1",
        "Module:       devskyy.agents.fixer:Agent",
        "Spec:",
        "  module: devskyy.agents.fixer:Agent",
    ]
    assert "  replicas: 2\n" in result.stdout
    wf = run(url, "describe", "workflows", "scan_and_fix").stdout
    assert "Steps:        3 (scan, fix, undo)\n" in wf
    assert "Role:         operator\n" in run(url, "describe", "rolebinding", "ops").stdout


def test_describe_json_and_yaml(url: str) -> None:
    fixer = document(DESIRED.get("Agent", "fixer"))  # type: ignore[arg-type]
    assert json.loads(run(url, "describe", "agent", "fixer", "-o", "json").stdout) == fixer
    assert yaml.safe_load(run(url, "describe", "agent", "fixer", "-o", "yaml").stdout) == fixer


def test_describe_unknown(url: str) -> None:
    result = run(url, "describe", "agent", "x")
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        'error: Agent "x" not found\n',
    )


def test_graph_cli(url: str) -> None:
    assert run(url, "graph").stdout == to_dot(DESIRED)
    assert run(url, "graph", "-o", "mermaid").stdout == to_mermaid(DESIRED)


def test_resolve_kind() -> None:
    assert resolve_kind(" RoleBindings ") == "RoleBinding"
    assert resolve_kind("wf") == "Workflow"
    with pytest.raises(DevskyyError):
        resolve_kind("")


# -- pure rendering -----------------------------------------------------------------------


def test_dot() -> None:
    assert to_dot(DESIRED) == (
        "digraph devskyy {\n"
        "  rankdir=LR;\n"
        "  node [shape=box];\n"
        "  subgraph cluster_0 {\n"
        '    label="agents";\n'
        '    a0 [label="fixer"];\n'
        '    a1 [label="scanner"];\n'
        "    a1 -> a0;\n"
        "  }\n"
        "  subgraph cluster_1 {\n"
        '    label="workflow scan_and_fix";\n'
        '    w0s0 [label="scan (agent scanner)"];\n'
        '    w0s1 [label="fix (capability fix)"];\n'
        '    w0s2 [label="undo (agent fixer, trigger any_failed)"];\n'
        "    w0s0 -> w0s1;\n"
        "    w0s1 -> w0s2;\n"
        "  }\n"
        "}\n"
    )


def test_mermaid() -> None:
    assert to_mermaid(DESIRED) == (
        "flowchart LR\n"
        '  subgraph g0["agents"]\n'
        '    a0["fixer"]\n'
        '    a1["scanner"]\n'
        "    a1 --> a0\n"
        "  end\n"
        '  subgraph g1["workflow scan_and_fix"]\n'
        '    w0s0["scan (agent scanner)"]\n'
        '    w0s1["fix (capability fix)"]\n'
        '    w0s2["undo (agent fixer, trigger any_failed)"]\n'
        "    w0s0 --> w0s1\n"
        "    w0s1 --> w0s2\n"
        "  end\n"
    )


def test_graph_of_nothing_and_of_dangling_dependencies() -> None:
    assert to_mermaid(ResourceSet()) == 'flowchart LR\n  subgraph g0["agents"]\n  end\n'
    # a dependency on an agent that is not live draws no edge (validation refuses it anyway)
    assert "->" not in to_dot(rs(agent("a", dependencies=["ghost"])))
