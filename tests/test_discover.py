"""``devskyy discover``: agent classes found by parsing (never importing) source files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from devskyy.cli import main
from devskyy.model.manifests import Agent
from devskyy.runtime.discovery import agent_name, discover, module_name, render

SCANNER = '''
from typing import Any, Dict
from agent.modules.base_agent import BaseAgent

raise SystemExit("discovery must never execute this file")


class ScannerAgentV2(BaseAgent):
    """Scans code for problems.

    More text.
    """

    capabilities = ["scan", "analyze"]
    priority = "high"

    def __init__(self):
        super().__init__(agent_name="Scanner", version="2.1.0")

    async def execute_core_function(self, **kwargs) -> Dict[str, Any]:
        return {}


class Helper:
    pass
'''

FIXER = """
from agent.modules import base_agent


class FixerBase(base_agent.BaseAgent):
    dependencies = ["scanner"]


class FixerAgent(FixerBase):
    capabilities: list[str] = ["fix"]

    async def execute_core_function(self, **kwargs):
        return {}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    pkg = tmp_path / "src" / "agent" / "modules"
    pkg.mkdir(parents=True)
    (tmp_path / "src" / "agent" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "scanner_v2.py").write_text(textwrap.dedent(SCANNER))
    (pkg / "fixer_agent.py").write_text(textwrap.dedent(FIXER))
    (pkg / "broken_agent.py").write_text("class (:\n")
    (pkg / "utils.py").write_text("class NotScanned(BaseAgent):\n    pass\n")
    hidden = tmp_path / "src" / ".venv"
    hidden.mkdir()
    (hidden / "other_agent.py").write_text(
        "class Other(BaseAgent):\n    async def execute_core_function(self): ...\n"
    )
    return tmp_path / "src"


def test_names_from_classes() -> None:
    assert agent_name("ScannerAgentV2") == "scanner"
    assert agent_name("InventoryAgent") == "inventory"
    assert agent_name("ClaudeSonnetV2") == "claude_sonnet"
    assert agent_name("SEOAgent") == "seo"
    assert agent_name("MyAgentV2") == "my"
    assert agent_name("Agent") == "agent"
    assert agent_name("ECommerceAgent") == "e_commerce"


def test_module_name_follows_packages(project: Path) -> None:
    assert module_name(project / "agent" / "modules" / "scanner_v2.py") == (
        "agent.modules.scanner_v2"
    )
    loose = project.parent / "loose_agent.py"
    loose.write_text("")
    assert module_name(loose) == "loose_agent"


def test_discover_parses_without_importing(project: Path) -> None:
    result = discover(project)
    assert [(f.class_name, f.manifest.name) for f in result.found] == [
        ("FixerAgent", "fixer"),
        ("ScannerAgentV2", "scanner"),
    ]
    fixer, scanner = (f.manifest for f in result.found)
    assert scanner.spec.module == "agent.modules.scanner_v2:ScannerAgentV2"
    assert scanner.spec.version == "2.1.0"
    assert scanner.spec.description == "Scans code for problems."
    assert scanner.spec.capabilities == ["scan", "analyze"]
    assert scanner.spec.priority.value == "high"
    assert fixer.spec.module == "agent.modules.fixer_agent:FixerAgent"
    assert fixer.spec.capabilities == ["fix"]
    assert fixer.spec.dependencies == ["scanner"]
    broken = project / "agent" / "modules" / "broken_agent.py"
    fixer_file = project / "agent" / "modules" / "fixer_agent.py"
    assert result.skipped == (
        f"{broken}:1: cannot parse: SyntaxError",
        f"{fixer_file}: FixerBase: abstract (no execute_core_function)",
    )


def test_render_keeps_only_what_was_found(project: Path) -> None:
    scanner = discover(project).found[1].manifest
    assert yaml.safe_load(render(scanner)) == {
        "apiVersion": "devskyy.dev/v1",
        "kind": "Agent",
        "metadata": {"name": "scanner"},
        "spec": {
            "module": "agent.modules.scanner_v2:ScannerAgentV2",
            "version": "2.1.0",
            "description": "Scans code for problems.",
            "capabilities": ["scan", "analyze"],
            "priority": "high",
        },
    }


def test_cli_writes_manifests_and_refuses_to_overwrite(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "manifests" / "agents"
    runner = CliRunner()
    result = runner.invoke(main, ["discover", str(project), "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"wrote {out / 'fixer.yaml'} (fixer: agent.modules.fixer_agent:FixerAgent)",
        f"wrote {out / 'scanner.yaml'} (scanner: agent.modules.scanner_v2:ScannerAgentV2)",
    ]
    assert "note: to apply them, allow their packages: DEVSKYY_ALLOWED_MODULES=agent" in (
        result.stderr
    )
    written = Agent.model_validate(yaml.safe_load((out / "scanner.yaml").read_text()))
    assert written.spec.capabilities == ["scan", "analyze"]

    (out / "scanner.yaml").write_text("# hand edited\n")
    again = runner.invoke(main, ["discover", str(project), "--output-dir", str(out)])
    assert again.exit_code == 1
    assert again.stderr.splitlines()[-1] == (
        f"error: refusing to overwrite {out / 'fixer.yaml'}, {out / 'scanner.yaml'} "
        "(use --force to replace)"
    )
    assert (out / "scanner.yaml").read_text() == "# hand edited\n"

    forced = runner.invoke(main, ["discover", str(project), "--output-dir", str(out), "--force"])
    assert forced.exit_code == 0
    assert (out / "scanner.yaml").read_text().startswith("apiVersion: devskyy.dev/v1\n")


def test_cli_dry_run_prints_yaml(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["discover", str(project), "--output-dir", str(out), "--dry-run"]
    )
    assert result.exit_code == 0
    docs = list(yaml.safe_load_all(result.stdout))
    assert [d["metadata"]["name"] for d in docs] == ["fixer", "scanner"]
    assert not out.exists()


def test_cli_nothing_found_and_missing_path(tmp_path: Path) -> None:
    runner = CliRunner()
    empty = runner.invoke(main, ["discover", str(tmp_path)])
    assert empty.exit_code == 0
    assert empty.stdout == (
        f"no BaseAgent subclasses found in *_v2.py or *_agent.py files under {tmp_path}\n"
    )
    missing = runner.invoke(main, ["discover", str(tmp_path / "nope")])
    assert missing.exit_code == 1
    assert missing.stderr == f"error: {tmp_path / 'nope'}: no such file or directory\n"


def test_discovered_manifest_for_the_repos_own_agents(repo_root: Path) -> None:
    # Whatever built-in agents exist are found and named from the devskyy package path.
    result = discover(repo_root / "devskyy" / "agents")
    for found in result.found:
        assert found.manifest.spec.module.startswith("devskyy.agents.")
