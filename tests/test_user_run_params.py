"""Found by using devskyy as a platform engineer would (helper H8): ``run -p`` values.

``devskyy run ecommerce_order -p order_id=12345`` failed with 'parameter "order_id"
must be a string, not integer (12345)': every value was parsed as JSON first. A string
param now takes the text as typed (as ``argo submit -p`` does); other types still parse
as JSON and are checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from devskyy.cli import main

MANIFESTS = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {name: echo}
spec:
  module: fake_workflow_agents:StepAgent
---
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {name: typed}
spec:
  params:
    order_id: {type: string, default: ""}
    flag: {type: string, default: ""}
    limit: {type: integer, default: 3}
    tags: {type: array, default: []}
  steps:
    - name: one
      agent: echo
      input:
        order_id: "${{ params.order_id }}"
        flag: "${{ params.flag }}"
        limit: "${{ params.limit }}"
        tags: "${{ params.tags }}"
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    (tmp_path / "m.yaml").write_text(MANIFESTS)
    base = ["--state", f"sqlite:///{tmp_path / 'state.db'}"]
    applied = CliRunner().invoke(main, [*base, "apply", "m.yaml"])
    assert applied.exit_code == 0, applied.output
    return base


def test_string_params_take_the_text_as_typed(cli: list[str]) -> None:
    args = ["-p", "order_id=12345", "-p", "flag=true", "-p", "limit=7", "-p", 'tags=["a"]']
    result = CliRunner().invoke(main, [*cli, "run", "typed", *args, "-o", "json"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["params"] == {"order_id": "12345", "flag": "true", "limit": 7, "tags": ["a"]}
    assert record["steps"]["one"]["output"]["echo"] == record["params"]


def test_other_types_are_still_checked(cli: list[str]) -> None:
    result = CliRunner().invoke(main, [*cli, "run", "typed", "-p", "limit=seven"])
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        'error: workflow "typed": parameter "limit" must be an integer, not string ("seven")\n'
    )
