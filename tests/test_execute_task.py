"""The guide's ``execute_task`` over the shipped agents, through Python and HTTP.

The shipped manifests are applied to a fresh store; the sample project is copied in.
The guide's example (``["scan", "fix"]``, HIGH) scans and then fixes; a table runs every
capability combination the guide's dependency graph allows (see ``COMBINATIONS``) through
``Orchestrator.execute_task`` and ``POST /api/agents/orchestrator/execute``: each one
succeeds, or fails with a top-level error naming the agent and the reason, and both paths
agree.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from codecheck_helpers import ROOT, copy_sample
from fastapi.testclient import TestClient

from devskyy import ExecutionPriority
from devskyy.api import ApiSettings, create_app
from devskyy.cli import main
from devskyy.core.tasks import TaskError
from devskyy.errors import NotFound
from devskyy.model.runs import RunStatus
from devskyy.runtime.system import System, open_system

SAMPLE = ".devskyy/sample_project"

PARAMETERS: dict[str, Any] = {
    "target_path": SAMPLE,
    "dry_run": True,  # the fixer reports diffs; the sample stays as it is for every row
    "topic": "GitOps for multi-agent systems",
    "customer": "buyer@example.com",
    "items": [{"sku": "DSK-MUG-001", "quantity": 1}],
    "currency": "USD",
    "payment_method": "pm_card_visa",
}


def _parts() -> list[tuple[str, ...]]:
    """The capabilities of each connected part of the shipped agents' dependency graph.

    Today (the guide's graph): scanner -> fixer; the security agent; the verifier; the
    content and commerce agents, joined through the SEO agent.
    """
    agents = {}
    for path in sorted((ROOT / "manifests" / "agents").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            agents[doc["metadata"]["name"]] = doc["spec"]
    part_of = {name: name for name in agents}

    def root(name: str) -> str:
        while part_of[name] != name:
            name = part_of[name]
        return name

    for name, spec in agents.items():
        for dep in spec.get("dependencies", []):
            part_of[root(dep)] = root(name)
    parts: dict[str, list[str]] = {}
    for name in sorted(agents):
        parts.setdefault(root(name), []).extend(agents[name]["capabilities"])
    return sorted(tuple(caps) for caps in parts.values())


# Within each part: every single capability, every pair, and the whole part.
PARTS = _parts()


def _combinations() -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for part in PARTS:
        for size in (1, 2):
            rows.extend(itertools.combinations(part, size))
        if len(part) > 2:
            rows.append(part)
    return list(dict.fromkeys(rows))


COMBINATIONS = _combinations()

ANY = "either"


def expected_failure(capabilities: tuple[str, ...]) -> str | None:
    """The agent a row's error names; None when it completes; ANY when it races.

    Charging needs a reserved order and recording needs a charge: without the step that
    makes it so, the financial agent refuses. The inventory and financial agents both
    depend only on the e-commerce agent, so a task that reserves and charges runs them in
    parallel (as the DAG engine runs independent steps): either may come first, so either
    may refuse (a charge before the reservation, a release after the charge).
    """
    caps = set(capabilities)
    if "process_payment" in caps and "reserve_inventory" in caps:
        return ANY
    if "process_payment" in caps or "record_transaction" in caps:
        return "financial"
    return None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[System, TestClient, str]]:
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(ROOT / "manifests", root / "manifests")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("DEVSKYY_STATE_URL", raising=False)
        mp.delenv("ANTHROPIC_API_KEY", raising=False)
        applied = CliRunner().invoke(main, ["apply", "manifests"], catch_exceptions=False)
        assert applied.exit_code == 0, applied.output
        copy_sample(root / ".devskyy")
        system = asyncio.run(open_system())
        assert system.discovery["failed"] == 0, system.discovery
        settings = ApiSettings(workspace_roots=(root,), rate_limit=100_000, block_sources=False)
        client = TestClient(create_app(system, settings), raise_server_exceptions=False)
        client.__enter__()
        key = system.security_manager().generate_api_key("u-admin", "admin").key
        try:
            yield system, client, key
        finally:
            client.__exit__(None, None, None)
            asyncio.run(system.close())


def python_task(system: System, capabilities: list[str], **params: Any) -> dict[str, Any]:
    return asyncio.run(
        system.orchestrator.execute_task(
            "table", {**PARAMETERS, **params}, capabilities, ExecutionPriority.HIGH
        )
    )


def http_task(client: TestClient, key: str, capabilities: list[str]) -> dict[str, Any]:
    body = {
        "task_type": "table",
        "parameters": PARAMETERS,
        "required_capabilities": capabilities,
        "priority": "high",
        "wait": True,
    }
    r = client.post("/api/agents/orchestrator/execute", json=body, headers={"X-API-Key": key})
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["kind"] == "task"
    result: dict[str, Any] = view["result"]
    return result


ERROR = re.compile(r"^agent '([a-z_]+)' failed: \w+: .+ \(.+\)$")
"""One line of a top-level error: the agent, the error and why it was not retried."""


def failing_agents(result: dict[str, Any]) -> list[str]:
    """The agents the top-level error names (each part: agent, error and reason)."""
    if result["error"] is None:
        return []
    parts = result["error"].split("\n")
    names = []
    for part in parts:
        match = ERROR.match(part)
        assert match is not None, part
        names.append(match.group(1))
    return names


def test_the_guides_example_scans_then_fixes(world: tuple[System, TestClient, str]) -> None:
    system, client, key = world
    result = python_task(system, ["scan", "fix"], dry_run=True)
    assert (result["status"], result["error"]) == ("completed", None), result
    assert result["agents"] == ["scanner", "fixer"]
    assert result["priority"] == "high"
    scan, fix = result["results"]["scanner"], result["results"]["fixer"]
    # The fixer got the scanner's report as its scan_results: it fixes exactly what the
    # scan found fixable, under the scanner's policy.
    assert scan["counts"]["fixable"] > 0
    assert fix["fix_counts"]["applied"] == scan["counts"]["fixable"]
    assert fix["remaining_counts"]["fixable"] == 0
    assert "agent scanner" in fix["policy"]["ruff"]["file"]
    assert (fix["dry_run"], fix["files_fixed"]) == (True, 0)
    # A task is a durable workflow run, listed with the runs.
    record = system.orchestrator.workflows.store.get(result["run_id"])
    assert (record.workflow, record.status) == ("task:table", RunStatus.SUCCEEDED)
    assert [(s.name, s.status.value) for s in record.steps] == [
        ("scanner", "succeeded"),
        ("fixer", "succeeded"),
    ]
    over_http = http_task(client, key, ["scan", "fix"])
    assert (over_http["status"], over_http["error"]) == ("completed", None)
    assert over_http["results"]["fixer"]["fix_counts"] == fix["fix_counts"]


def test_each_agent_gets_only_its_declared_parameters(
    world: tuple[System, TestClient, str],
) -> None:
    system, _client, _key = world
    result = python_task(system, ["scan"], include_live_check=False, unrelated="ignored")
    record = system.orchestrator.workflows.store.get(result["run_id"])
    workflow = system.orchestrator.workflows.workflow_of(record)
    (step,) = workflow.spec.steps
    assert sorted(step.input) == ["include_live_check", "target_path"]
    assert step.input["target_path"] == '${{ params.parameters."target_path" }}'


def test_a_failed_task_names_the_agent_and_the_reason(
    world: tuple[System, TestClient, str],
) -> None:
    system, _client, _key = world
    empty = python_task(system, ["generate_content", "seo_optimize"], topic="")
    assert empty["status"] == "failed"
    assert empty["error"] == (
        "agent 'claude_sonnet' failed: PermanentError: invalid content brief: topic: "
        "String should have at least 1 character (permanent: not retried)"
    )
    assert empty["errors"] == {
        "claude_sonnet": empty["error"].split(" failed: ", 1)[1],
        "seo": "skipped: needs failed: claude_sonnet",
    }
    missing = python_task(system, ["scan"], target_path="/nowhere/at/all")
    assert missing["status"] == "failed"
    assert failing_agents(missing) == ["scanner"]
    with pytest.raises(NotFound, match=r"^no registered agent has capability 'fly'$"):
        python_task(system, ["fly"])
    with pytest.raises(TaskError, match=r"^a task needs at least one required capability$"):
        python_task(system, [])


@pytest.mark.parametrize("capabilities", COMBINATIONS, ids=["+".join(c) for c in COMBINATIONS])
def test_capability_table(
    world: tuple[System, TestClient, str], capabilities: tuple[str, ...]
) -> None:
    system, client, key = world
    by_python = python_task(system, list(capabilities))
    by_http = http_task(client, key, list(capabilities))
    expected = expected_failure(capabilities)
    for result in (by_python, by_http):
        named = failing_agents(result)
        if expected is None or (expected == ANY and result["status"] == "completed"):
            assert (result["status"], result["error"]) == ("completed", None), result["error"]
            assert result["errors"] == {}
        elif expected == ANY:  # charging and reserving or releasing raced
            assert result["status"] == "failed"
            assert named
            assert set(named) <= {"financial", "inventory"}
        else:
            assert (result["status"], named) == ("failed", [expected])
        # Every agent that covers a capability ran (or was skipped for a failed need).
        assert set(result["agents"]) >= {system.orchestrator.resolve(c) for c in capabilities}
    assert by_python["agents"] == by_http["agents"]
    if expected != ANY:
        assert by_python["status"] == by_http["status"]
