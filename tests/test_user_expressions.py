"""Found by using devskyy as a platform engineer would (helper H8): expression typos."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from devskyy.cli import main
from devskyy.core.expressions import ExpressionError, parse_condition, templates_in

WORKFLOW = """\
apiVersion: devskyy.dev/v1
kind: Workflow
metadata:
  name: wf
spec:
  params:
    x: {type: string, default: a}
  steps:
    - name: one
      agent: seo
      when: ${{ params.x == 'a'
      input:
        text: ${{ params.x
"""

AGENT = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: seo
spec:
  module: devskyy.agents.seo:SeoAgent
"""


def test_unclosed_template_is_an_error() -> None:
    with pytest.raises(ExpressionError) as info:
        templates_in({"a": ["ok ${{ params.x }}", "${{ params.y"]})
    assert str(info.value) == "unclosed '${{' in '${{ params.y' (no matching '}}')"
    with pytest.raises(ExpressionError) as info:
        templates_in("${{ params.x }} and ${{ params.y }")
    assert str(info.value) == (
        "unclosed '${{' in '${{ params.x }} and ${{ params.y }' (no matching '}}')"
    )
    assert [e.source for e in templates_in("a ${{ params.x }} b")] == ["params.x"]


def test_unclosed_condition_is_an_error() -> None:
    with pytest.raises(ExpressionError) as info:
        parse_condition("${{ params.x")
    assert str(info.value) == (
        "'${{ params.x' is not one ${{ … }} expression (unclosed or with text around)"
    )
    assert parse_condition("${{ params.x }}").source == "params.x"
    assert parse_condition("params.x").source == "params.x"


def test_validate_names_the_unclosed_expressions(tmp_path: Path) -> None:
    (tmp_path / "seo.yaml").write_text(AGENT)
    (tmp_path / "wf.yaml").write_text(WORKFLOW)
    result = CliRunner().invoke(main, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"{tmp_path}/wf.yaml:11:7: spec.steps[0].when: \"${{{{ params.x == 'a'\" is not one "
        "${{ … }} expression (unclosed or with text around)\n"
        f"{tmp_path}/wf.yaml:13:9: spec.steps[0].input.text: unclosed '${{{{' in "
        "'${{ params.x' (no matching '}}')\n"
        f"{tmp_path}: 2 problems\n"
    )
