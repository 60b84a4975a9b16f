"""``devskyy serve`` option handling that needs no running server."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from devskyy.cli import main, serve
from devskyy.runtime import workflows


def test_invalid_manifests_are_reported_and_nothing_is_served(tmp_path: Path) -> None:
    tree = tmp_path / "manifests"
    tree.mkdir()
    (tree / "bad.yaml").write_text(
        "apiVersion: devskyy.dev/v1\nkind: Role\nmetadata: {name: r}\nspec: {rules: 3}\n"
    )
    state = f"sqlite:///{tmp_path / 's.db'}"
    result = CliRunner().invoke(
        main, ["--state", state, "serve", "--port", "1", "--manifests", str(tree)]
    )
    assert result.exit_code == 1
    assert "bad.yaml:4:" in result.output
    assert "spec.rules" in result.output


def test_a_workspace_must_exist(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "--workspace", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_the_stale_after_default_is_the_engine_s() -> None:
    # serve keeps its own copy so that --help does not import the engine: the two agree.
    assert serve.STALE_AFTER == workflows.STALE_AFTER
