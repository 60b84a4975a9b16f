"""Found by using devskyy as a platform engineer would (helper H8): kubectl's KIND/NAME.

``devskyy get agent/scanner`` said 'unknown kind "agent/scanner"' and ``describe
agent/scanner`` 'Missing argument NAME'; kubectl users type that form by habit.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from devskyy.cli import main

AGENT = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {name: seo}
spec:
  module: devskyy.agents.seo:SeoAgent
"""


@pytest.fixture
def state(tmp_path: Path) -> list[str]:
    (tmp_path / "seo.yaml").write_text(AGENT)
    base = ["--state", f"sqlite:///{tmp_path / 'state.db'}"]
    assert CliRunner().invoke(main, [*base, "apply", str(tmp_path / "seo.yaml")]).exit_code == 0
    return base


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_get_and_describe_accept_kind_slash_name(state: list[str]) -> None:
    assert _cli(*state, "get", "agent/seo") == _cli(*state, "get", "agents", "seo")
    code, out, _ = _cli(*state, "get", "agent/seo")
    assert code == 0
    assert out.splitlines()[1].split() == ["seo", "medium", "1", "-", "-"]
    code, out, _ = _cli(*state, "describe", "agent/seo")
    assert code == 0
    assert out.startswith("Kind:         Agent\nName:         seo\n")
    assert _cli(*state, "describe", "agent/nope") == (1, "", 'error: Agent "nope" not found\n')


def test_kind_slash_name_mistakes(state: list[str]) -> None:
    assert _cli(*state, "get", "agent/seo", "fixer") == (
        1,
        "",
        'error: give "agent/seo" or "agent fixer", not both\n',
    )
    assert _cli(*state, "get", "agent/") == (
        1,
        "",
        'error: "agent/" names no resource (KIND/NAME, as agent/scanner)\n',
    )
    code, _, err = _cli(*state, "describe", "agent")
    assert code == 2
    assert err.endswith("Error: Missing argument 'NAME' (describe KIND NAME or KIND/NAME).\n")
