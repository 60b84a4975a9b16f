"""Found by using devskyy as a platform engineer would (helper H8): agent checks.

Without ``--check-agents`` a typo in an agent's ``spec.config`` (or class name) passed
``validate`` and ``apply`` (exit 0) and only broke the first run of a workflow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from devskyy.cli import main
from devskyy.model.manifests import Agent
from devskyy.runtime.agent_check import check_agent

AGENTS = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: scanner
spec:
  module: devskyy.agents.scanner:ScannerAgent
  config:
    lineLenght: 88
    maxComplexity: ten
---
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: seo
spec:
  module: devskyy.agents.seo:SeoAgnet
---
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: gone
spec:
  module: devskyy.agents.not_there:Agent
---
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: fine
spec:
  module: devskyy.agents.scanner:ScannerAgent
  config: {lineLength: 100}
"""


def test_check_agents_reports_class_and_config_problems(tmp_path: Path) -> None:
    (tmp_path / "agents.yaml").write_text(AGENTS)
    plain = CliRunner().invoke(main, ["validate", str(tmp_path)])
    assert (plain.exit_code, plain.stderr) == (0, "")  # nothing imported by default
    result = CliRunner().invoke(main, ["validate", "--check-agents", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    f = tmp_path / "agents.yaml"
    assert result.stderr == (
        f"{f}:8:5: spec.config.lineLenght: unknown field 'lineLenght'\n"
        f"{f}:9:5: spec.config.maxComplexity: Input should be a valid integer, unable to "
        "parse string as an integer (got 'ten')\n"
        f"{f}:16:3: spec.module: module 'devskyy.agents.seo' has no attribute 'SeoAgnet'\n"
        f"{f}:23:3: spec.module: cannot import 'devskyy.agents.not_there': "
        "ModuleNotFoundError: No module named 'devskyy.agents.not_there'\n"
        f"{tmp_path}: 4 problems\n"
    )


def test_check_agents_accepts_the_shipped_manifests() -> None:
    root = Path(__file__).resolve().parent.parent / "manifests"
    result = CliRunner().invoke(main, ["validate", "--check-agents", str(root)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith(": 5 roles, 2 role bindings, 12 agents, 3 workflows: valid\n")


def test_check_agent_names_a_non_agent_class() -> None:
    agent = Agent.model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "Agent",
            "metadata": {"name": "x"},
            "spec": {"module": "devskyy.runtime.agent:AgentContext"},
        }
    )
    assert check_agent(agent) == [
        (("spec", "module"), "'devskyy.runtime.agent:AgentContext' is not a BaseAgent subclass")
    ]


def test_prune_with_a_comment_only_tree_deletes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "seo.yaml").write_text(AGENTS.split("---\n")[1])
    (tmp_path / "wrong").mkdir()
    (tmp_path / "wrong" / "notes.yaml").write_text("# moved to ../good\n")
    (tmp_path / "wrong" / "empty.yml").write_text("---\n---\n")
    base = ["--state", f"sqlite:///{tmp_path / 'state.db'}"]
    assert CliRunner().invoke(main, [*base, "apply", "good"]).exit_code == 0
    pruned = CliRunner().invoke(main, [*base, "apply", "--prune", "wrong"])
    assert (pruned.exit_code, pruned.stdout) == (1, "")
    assert pruned.stderr == (
        "wrong/empty.yml:1:1: <file>: no resources in wrong: every manifest file is empty "
        "or only comments\nwrong: 1 problem\n"
    )
    listed = CliRunner().invoke(main, [*base, "get", "agents", "-o", "json"])
    assert [a["metadata"]["name"] for a in json.loads(listed.stdout)] == ["seo"]
