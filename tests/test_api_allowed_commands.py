"""``serve --allow-command``: the operator's exact command lines, the only ones a request may name.

Without the option a request that sets a command input is 403 ``command_not_allowed``
(``test_api_commands.py``). With it, ``scan_and_fix`` over HTTP may verify: a request's
``verify_command`` whose words (``shlex``) equal an allowed line runs (the operator's text
is what runs), and the run is audited; a different command, one more argument, one
fewer, or a parameter spliced into a longer command stays 403 and starts nothing.
"""

from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_fixtures import ApiWorld, scan_and_fix_code
from click.testing import CliRunner
from test_api_commands import VERIFY

from devskyy.adapters.run_store import SqlRunStore
from devskyy.cli import main
from devskyy.cli._common import api_settings
from devskyy.model.security import EventType

# The project's own check: it imports the project, so it runs the project's code.
CHECK = f"{shlex.quote(sys.executable)} -c 'import pkg.a'"
REFUSED = (
    "parameter 'verify_command' is a command run on the server; the HTTP API does not "
    "take one (run it with devskyy run on the server)"
)
NOT_ONE = (
    "it is not one of the command lines this server allows (--allow-command): a request "
    "must name one word for word"
)
NONE = (
    "this server allows none: its operator may list exact command lines with "
    "devskyy serve --allow-command"
)


def _world(root: Path, allowed: tuple[str, ...]) -> ApiWorld:
    """The real scan_and_fix over ``root/workspace``: the fixtures' scanner, fixer and
    verifier (``test_api_commands``), and the shipped security agent confined there."""
    return ApiWorld(root, {"allowed_commands": allowed}, more_code=VERIFY + scan_and_fix_code())


@pytest.fixture
def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[ApiWorld]:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    w = _world(tmp_path, getattr(request, "param", (CHECK,)))
    yield w
    w.close()


def _scan_and_fix(world: ApiWorld, **params: Any) -> Any:
    return world.client.post(
        "/api/agents/registry/workflow?wait=true",
        headers={"X-API-Key": world.key("operator")},
        json={
            "workflow_name": "scan_and_fix",
            "parameters": {"target_path": str(world.workspace), **params},
        },
    )


def _runs(world: ApiWorld) -> int:
    return len(SqlRunStore(world.system.engine).list_runs())


def _command_audits(world: ApiWorld) -> list[dict[str, Any]]:
    events = world.security.get_audit_log(event_type=EventType.PERMISSION_ALLOWED, limit=1000)
    return [e for e in events if e["details"].get("permission") == "run_command"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "asked",
    [CHECK, f'  {shlex.quote(sys.executable)}   -c   "import pkg.a"'],  # the same words
)
def test_an_allowed_command_verifies_before_and_after_the_fix(world: ApiWorld, asked: str) -> None:
    answer = _scan_and_fix(world, verify_command=asked)
    assert answer.status_code == 200, answer.text
    run = answer.json()
    assert run["status"] == "succeeded", run
    record = SqlRunStore(world.system.engine).get(run["run_id"])
    steps = {s.name: s for s in record.steps}
    assert {n: steps[n].status.value for n in ("verify_before", "fix", "verify_after")} == {
        "verify_before": "succeeded",
        "fix": "succeeded",
        "verify_after": "succeeded",
    }
    for name, stage in (("verify_before", "before the fix"), ("verify_after", "after the fix")):
        output = steps[name].output or {}
        # What ran is the operator's line, whatever spacing or quoting the request used.
        assert (output["ran"], output["passed"], output["command"], output["stage"]) == (
            True,
            True,
            CHECK,
            stage,
        )
    assert record.params["verify_command"] == CHECK
    assert [(e["actor"], e["resource"], e["details"]) for e in _command_audits(world)] == [
        (
            "u-operator",
            f"runs/{run['run_id']}",
            {
                "permission": "run_command",
                "parameter": "verify_command",
                "command": CHECK,
                "run_id": run["run_id"],
                "allowed_by": "--allow-command",
            },
        )
    ]


@pytest.mark.parametrize(
    "asked",
    [
        "touch {marker}",  # another command
        CHECK + " ; touch {marker}",  # the allowed one, then more words
        f"{shlex.quote(sys.executable)} -c",  # a prefix of the allowed one
        f"{shlex.quote(sys.executable)} -c 'import pkg.a' -x",  # one more argument
        "'unclosed {marker}",  # no words at all
    ],
)
def test_anything_but_an_allowed_line_is_refused(
    world: ApiWorld, tmp_path: Path, asked: str
) -> None:
    marker = tmp_path / "ran"
    before = _runs(world)
    answer = _scan_and_fix(world, verify_command=asked.format(marker=marker))
    assert answer.status_code == 403
    assert answer.json()["error"] == "command_not_allowed"
    # The value sent is not echoed: a command line may carry a token.
    assert answer.json()["detail"] == {"reason": REFUSED, "hint": NOT_ONE}
    assert (marker.exists(), _runs(world), _command_audits(world)) == (False, before, [])


@pytest.mark.parametrize("world", [()], indirect=True)
def test_without_the_option_even_that_line_is_refused(world: ApiWorld) -> None:
    before = _runs(world)
    answer = _scan_and_fix(world, verify_command=CHECK)
    assert answer.status_code == 403
    assert answer.json()["detail"] == {"reason": REFUSED, "hint": NONE}
    assert _runs(world) == before


@pytest.mark.parametrize("world", [("python -m pkg.a",)], indirect=True)
def test_a_parameter_spliced_into_a_longer_command_is_refused(world: ApiWorld) -> None:
    # check_flow runs "python -m ${{ params.module }}": "pkg.a" would make it the
    # allowed line, but the value alone is not a command the operator listed.
    answer = world.client.post(
        "/api/agents/registry/workflow?wait=true",
        headers={"X-API-Key": world.key("operator")},
        json={"workflow_name": "check_flow", "parameters": {"module": "pkg.a"}},
    )
    assert answer.status_code == 403
    assert answer.json()["detail"]["hint"] == (
        "it is part of a longer command in a step's input: only a parameter that is the "
        "whole command may name a command line the server allows (--allow-command)"
    )


def test_a_task_may_name_an_allowed_line(world: ApiWorld) -> None:
    answer = world.client.post(
        "/api/agents/orchestrator/execute?wait=true",
        headers={"X-API-Key": world.key("admin")},
        json={
            "task_type": "check",
            "parameters": {"command": CHECK, "target_path": str(world.workspace)},
            "required_capabilities": ["verify"],
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "succeeded", answer.json()
    outputs = [
        s.output for s in SqlRunStore(world.system.engine).get(answer.json()["run_id"]).steps
    ]
    assert [(o or {}).get("command") for o in outputs] == [CHECK]
    assert [e["details"]["parameter"] for e in _command_audits(world)] == ["command"]
    refused = world.client.post(
        "/api/agents/orchestrator/execute?wait=true",
        headers={"X-API-Key": world.key("admin")},
        json={
            "task_type": "check",
            "parameters": {"command": CHECK + " -v"},
            "required_capabilities": ["verify"],
        },
    )
    assert (refused.status_code, refused.json()["error"]) == (403, "command_not_allowed")


@pytest.mark.parametrize("command", ["serve", "watch"])
def test_the_option_is_in_the_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "--allow-command COMMAND" in result.output
    assert "matched word for word (repeatable)" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("value", "why"),
    [("", "'' is empty"), ("pytest 'open", '"pytest \'open" cannot be split into words')],
)
def test_a_line_that_names_no_command_is_a_usage_error(value: str, why: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--allow-command", value])
    assert result.exit_code == 2
    assert f"Invalid value for '--allow-command': {why}" in result.output


def test_watch_takes_it_only_with_serve(tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path / 's.db'}"
    result = CliRunner().invoke(
        main, ["--state", state, "watch", str(tmp_path), "--allow-command", "pytest -q"]
    )
    assert result.exit_code == 2
    assert "--allow-command needs --serve (it is a setting of the HTTP API)" in result.output


def test_the_allowed_lines_are_logged_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="devskyy.serve")
    settings = api_settings((tmp_path,), None, ("pytest -q", "make check"))
    assert settings.allowed_commands == ("pytest -q", "make check")
    assert [r.getMessage() for r in caplog.records] == [
        "API requests may run the command 'pytest -q' (--allow-command)",
        "API requests may run the command 'make check' (--allow-command)",
    ]
