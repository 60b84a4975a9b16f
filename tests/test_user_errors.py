"""Errors that lead to the cause (issue 18.4), as a platform engineer meets them.

* a broken file's "unknown agent" consequences elsewhere come after it, marked;
* a dependency cycle is reported in the file of each agent on it;
* a ``when`` that fails on a bare number hints at JMESPath's back-quoted literals;
* an agent whose class or config does not load is ``file:line:col`` at ``run`` too;
* ``--state`` naming a folder that does not exist is an error, not an empty store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from devskyy.cli import main

HEADER = "apiVersion: devskyy.dev/v1\n"


def agent(name: str, extra: str = "") -> str:
    return (
        f"{HEADER}kind: Agent\nmetadata:\n  name: {name}\nspec:\n"
        f"  module: devskyy.agents.fixer:FixerAgent\n{extra}"
    )


def validate(tree: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["validate", str(tree), *args])


def test_consequences_of_a_broken_file_are_marked_and_listed_after_it(tmp_path: Path) -> None:
    (tmp_path / "a-flow.yaml").write_text(
        f"{HEADER}kind: Workflow\nmetadata:\n  name: nightly\nspec:\n  steps:\n"
        "    - name: scan\n      agent: scanner\n"
        "    - name: fix\n      agent: fixer\n      needs: [scan]\n"
    )
    # A YAML syntax error in the first document: the second one (fixer) is never read.
    (tmp_path / "b-agents.yaml").write_text(
        agent("scanner", "   capabilities: [scan]\n") + "---\n" + agent("fixer")
    )
    result = validate(tmp_path)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{tmp_path}/b-agents.yaml:7:16: spec: invalid YAML: mapping values are not allowed "
        "in this context",
        f"{tmp_path}/a-flow.yaml:10:7: spec.steps[1].agent: unknown agent 'fixer' "
        f"(perhaps a consequence of the broken {tmp_path}/b-agents.yaml above)",
        f"{tmp_path}: 2 problems",
    ]


def test_a_document_with_a_bad_kind_explains_references_to_its_name(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(agent("a", "  dependencies: [b, ghost]\n"))
    (tmp_path / "b.yaml").write_text(agent("b").replace("kind: Agent", "kind: Agnet"))
    result = validate(tmp_path)
    assert result.stderr.splitlines() == [
        f"{tmp_path}/a.yaml:7:21: spec.dependencies[1]: unknown agent 'ghost'",
        f"{tmp_path}/b.yaml:2:1: kind: unknown kind 'Agnet'; 'kind' must be one of "
        "Agent, Workflow, Role, RoleBinding",
        f"{tmp_path}/a.yaml:7:18: spec.dependencies[0]: unknown agent 'b' "
        f"(a consequence of the broken {tmp_path}/b.yaml above)",
        f"{tmp_path}: 3 problems",
    ]


def test_a_valid_tree_has_no_consequence_notes(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(agent("a", "  dependencies: [ghost]\n"))
    result = validate(tmp_path)
    assert result.stderr.splitlines() == [
        f"{tmp_path}/a.yaml:7:18: spec.dependencies[0]: unknown agent 'ghost'",
        f"{tmp_path}: 1 problem",
    ]


def test_a_dependency_cycle_is_reported_in_each_agents_file(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents/api.yaml").write_text(agent("api", "  dependencies: [db]\n"))
    (tmp_path / "agents/db.yaml").write_text(agent("db", "  dependencies: [cache]\n"))
    (tmp_path / "agents/cache.yaml").write_text(agent("cache", "  dependencies: [api]\n"))
    (tmp_path / "agents/web.yaml").write_text(agent("web", "  dependencies: [api]\n"))
    result = validate(tmp_path)
    assert result.stderr.splitlines() == [
        f"{tmp_path}/agents/api.yaml:7:18: spec.dependencies[0]: "
        "dependency cycle: api -> db -> cache -> api",
        f"{tmp_path}/agents/cache.yaml:7:18: spec.dependencies[0]: "
        "dependency cycle: cache -> api -> db -> cache",
        f"{tmp_path}/agents/db.yaml:7:18: spec.dependencies[0]: "
        "dependency cycle: db -> cache -> api -> db",
        f"{tmp_path}: 3 problems",
    ]


@pytest.mark.parametrize(
    ("when", "column", "fixed"),
    [
        ('"steps.scan.output.count > 0"', 26, "'steps.scan.output.count > `0`'"),
        ('"${{ steps.scan.output.count >= 10 }}"', 27, "'steps.scan.output.count >= `10`'"),
    ],
)
def test_a_bare_number_in_when_hints_at_back_quotes(
    tmp_path: Path, when: str, column: int, fixed: str
) -> None:
    (tmp_path / "a.yaml").write_text(agent("fixer"))
    (tmp_path / "w.yaml").write_text(
        f"{HEADER}kind: Workflow\nmetadata:\n  name: w\nspec:\n  steps:\n"
        "    - name: scan\n      agent: fixer\n"
        f"    - name: fix\n      agent: fixer\n      needs: [scan]\n      when: {when}\n"
    )
    result = validate(tmp_path)
    (line, summary) = result.stderr.splitlines()
    assert line.startswith(f"{tmp_path}/w.yaml:12:7: spec.steps[1].when: invalid expression ")
    assert f'Parse error at column {column}, token "' in line
    assert line.endswith(f"(NUMBER); JMESPath literals go in back quotes: {fixed}")
    assert summary == f"{tmp_path}: 1 problem"


def test_a_bare_number_in_an_input_template_hints_too(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(agent("fixer"))
    (tmp_path / "w.yaml").write_text(
        f"{HEADER}kind: Workflow\nmetadata:\n  name: w\nspec:\n"
        "  params: {n: {type: integer, default: 1}}\n  steps:\n"
        "    - name: fix\n      agent: fixer\n"
        '      input: {big: "${{ params.n > 5 }}"}\n'
    )
    line = validate(tmp_path).stderr.splitlines()[0]
    assert line.startswith(f"{tmp_path}/w.yaml:10:15: spec.steps[0].input.big: ")
    assert line.endswith("(NUMBER); JMESPath literals go in back quotes: 'params.n > `5`'")


def test_other_expression_errors_get_no_hint(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(agent("fixer"))
    (tmp_path / "w.yaml").write_text(
        f"{HEADER}kind: Workflow\nmetadata:\n  name: w\nspec:\n  steps:\n"
        '    - name: fix\n      agent: fixer\n      when: "params.x =="\n'
    )
    line = validate(tmp_path).stderr.splitlines()[0]
    assert "back quotes" not in line
    assert "invalid expression 'params.x =='" in line


SCANNER = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: scanner
spec:
  module: devskyy.agents.scanner:ScannerAgent
  capabilities: [scan]
  config:
    lineLenght: 88
    maxComplexity: ten
---
apiVersion: devskyy.dev/v1
kind: Workflow
metadata:
  name: w
spec:
  steps:
    - name: scan
      agent: scanner
      input: {target_path: "."}
"""


@pytest.mark.parametrize("keep_tree", [True, False])
def test_an_agent_config_that_does_not_load_is_located_at_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_tree: bool
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()
    (tmp_path / "m/all.yaml").write_text(SCANNER)
    runner = CliRunner()
    assert runner.invoke(main, ["apply", "m"]).exit_code == 0
    checked = runner.invoke(main, ["validate", "--check-agents", "m"])
    located = [
        "m/all.yaml:9:5: spec.config.lineLenght: unknown field 'lineLenght'",
        "m/all.yaml:10:5: spec.config.maxComplexity: Input should be a valid integer, "
        "unable to parse string as an integer (got 'ten')",
    ]
    assert checked.stderr.splitlines()[:2] == located
    if not keep_tree:
        (tmp_path / "m/all.yaml").unlink()
    result = runner.invoke(main, ["run", "w"])
    assert result.exit_code == 1
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    if keep_tree:
        expected = [f'warning: agent "scanner" did not start: {line}' for line in located]
    else:  # the same words, without a place to point at
        expected = [
            'warning: agent "scanner" did not start: spec.config.lineLenght: '
            "unknown field 'lineLenght'",
            'warning: agent "scanner" did not start: spec.config.maxComplexity: Input should '
            "be a valid integer, unable to parse string as an integer (got 'ten')",
        ]
    assert sorted(warnings) == sorted(expected)
    assert "pydantic" not in result.stderr
    assert "validation error" not in result.stderr


def test_state_in_a_missing_folder_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/typo/state.db"
    for args in (["get", "agents"], ["history"], ["runs", "list"], ["apply", str(tmp_path)]):
        result = CliRunner().invoke(main, ["--state", url, *args])
        assert result.exit_code == 1, args
        assert result.stdout == ""
        assert result.stderr == (
            f"error: state store {url}: the folder {tmp_path}/typo does not exist "
            "(create it, or correct --state / DEVSKYY_STATE_URL)\n"
        )
    assert not (tmp_path / "typo").exists()


def test_state_naming_a_folder_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVSKYY_STATE_URL", f"sqlite:///{tmp_path}")
    result = CliRunner().invoke(main, ["get", "agents"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: state store sqlite:///{tmp_path} is a folder; "
        f"name a file in it (sqlite:///{tmp_path}/state.db)\n"
    )


def test_the_default_store_folder_is_still_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()
    (tmp_path / "m/a.yaml").write_text(agent("a"))
    result = CliRunner().invoke(main, ["apply", "m"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".devskyy/state.db").exists()
