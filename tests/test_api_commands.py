"""The HTTP API never runs a command a request names (``ServerCommand`` inputs).

``scan_and_fix``'s ``verify_command`` runs a program on the machine that runs devskyy.
From the CLI that is the user's own shell; over HTTP any key allowed to start the workflow
(operator, service) ran any program as the server's user and could read the store and mint
keys. A request that sets a parameter feeding a command input is 403 ``command_not_allowed``
and starts nothing; the command a manifest itself declares still runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_fixtures import VERIFIER, ApiWorld

from devskyy.adapters.run_store import SqlRunStore

VERIFY = (
    VERIFIER
    + """\
---
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {{name: check_flow}}
spec:
  params:
    target_path: {{type: string, default: "."}}
    cmd: {{type: string, default: ""}}
    module: {{type: string, default: ""}}
  steps:
    - name: exact
      agent: verifier
      input: {{target_path: "${{{{ params.target_path }}}}", command: "${{{{ params.cmd }}}}"}}
    - name: inside
      agent: verifier
      when: "${{{{ params.module != '' }}}}"
      input:
        target_path: "${{{{ params.target_path }}}}"
        command: "python -m ${{{{ params.module }}}}"
---
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {{name: fixed_check}}
spec:
  steps:
    - name: own
      agent: verifier
      input: {{target_path: "{ws}", command: "true"}}
"""
)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiWorld]:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    w = ApiWorld(tmp_path, more_code=VERIFY)
    yield w
    w.close()


HINTS = {
    "cmd": "this server allows none: its operator may list exact command lines with "
    "devskyy serve --allow-command",
    "module": "it is part of a longer command in a step's input: only a parameter that is "
    "the whole command may name a command line the server allows (--allow-command)",
}


def _runs(world: ApiWorld) -> int:
    return len(SqlRunStore(world.system.engine).list_runs())


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"cmd": "touch {marker}"}, "cmd"),
        ({"module": "pytest; touch {marker}"}, "module"),  # inside a longer text
    ],
)
def test_a_workflow_request_naming_a_command_is_refused(
    world: ApiWorld, tmp_path: Path, params: dict[str, str], name: str
) -> None:
    marker = tmp_path / "ran"
    before = _runs(world)
    answer = world.client.post(
        "/api/agents/registry/workflow?wait=true",
        headers={"X-API-Key": world.key("operator")},
        json={
            "workflow_name": "check_flow",
            "parameters": {k: v.format(marker=marker) for k, v in params.items()},
        },
    )
    assert answer.status_code == 403
    assert answer.json()["error"] == "command_not_allowed"
    assert answer.json()["detail"] == {
        "reason": f"parameter {name!r} is a command run on the server; the HTTP API does not "
        "take one (run it with devskyy run on the server)",
        "hint": HINTS[name],
    }
    assert (marker.exists(), _runs(world)) == (False, before)


def test_a_task_request_naming_a_command_is_refused(world: ApiWorld, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    answer = world.client.post(
        "/api/agents/orchestrator/execute?wait=true",
        headers={"X-API-Key": world.key("admin")},
        json={
            "task_type": "check",
            "parameters": {"command": f"touch {marker}"},
            "required_capabilities": ["verify"],
        },
    )
    assert (answer.status_code, answer.json()["error"]) == (403, "command_not_allowed")
    assert not marker.exists()


def test_an_empty_command_and_the_manifests_own_command_still_run(world: ApiWorld) -> None:
    key = world.key("operator")
    for body in (
        {"workflow_name": "check_flow", "parameters": {"cmd": ""}},
        {"workflow_name": "fixed_check"},
    ):
        answer = world.client.post(
            "/api/agents/registry/workflow?wait=true", headers={"X-API-Key": key}, json=body
        )
        assert (answer.status_code, answer.json()["status"]) == (200, "succeeded"), answer.text
