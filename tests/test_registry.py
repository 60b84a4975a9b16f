"""The registry: agents built from live state, failures reported, hot reload, health."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from fake_agents import FakeConfig, GateAgent, ScriptedAgent

from devskyy.adapters.clock import FakeClock
from devskyy.errors import NotFound
from devskyy.model.manifests import Agent, Workflow
from devskyy.model.resources import ResourceSet
from devskyy.runtime import manifests
from devskyy.runtime.orchestrator import Orchestrator
from devskyy.runtime.registry import AgentLoadError, Registry, module_allowed


def agent(name: str, module: str, **spec: Any) -> Agent:
    return Agent.model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "Agent",
            "metadata": {"name": name},
            "spec": {"module": module, **spec},
        }
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(autouse=True)
def _allow_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_agents")
    GateAgent.gate = None
    GateAgent.started = []


def registry_for(clock: FakeClock, *manifests: Agent | Workflow) -> tuple[Registry, list[Any]]:
    state: list[Any] = [ResourceSet(tuple(manifests))]
    orch = Orchestrator(clock, random_source=lambda: 0.5)
    return Registry(orch, lambda: state[0], clock=clock), state


def test_fake_agents_module_is_importable_from_tests() -> None:
    assert "fake_agents" in sys.modules


def test_module_prefixes() -> None:
    assert module_allowed("devskyy.agents.scanner:Scanner", ["devskyy.agents"])
    assert not module_allowed("devskyy.agentsx:Scanner", ["devskyy.agents"])
    assert module_allowed("fake_agents:X", ["fake_agents"])


def test_discover_builds_replicas_from_live_state(clock: FakeClock) -> None:
    registry, _ = registry_for(
        clock,
        agent(
            "scanner",
            "fake_agents:SucceedAgent",
            capabilities=["scan"],
            replicas=3,
            priority="high",
            config={"label": "s"},
        ),
        agent(
            "fixer", "fake_agents:RecordingAgent", capabilities=["fix"], dependencies=["scanner"]
        ),
    )
    summary = run(registry.discover_and_register_all_agents())
    assert summary == {
        "total_agents": 2,
        "registered": 2,
        "failed": 0,
        "agents": {"fixer": "registered", "scanner": "registered"},
        "errors": {},
    }
    instances = registry.orchestrator.instances("scanner")
    assert len(instances) == 3
    assert len({id(i) for i in instances}) == 3
    first = registry.get_agent("scanner")
    assert isinstance(first, ScriptedAgent)
    assert first.name == "scanner"
    assert first.config == FakeConfig(label="s")
    assert first.context.clock is clock
    assert first.status.value == "healthy"
    assert registry.get_agent("nobody") is None
    assert [a["name"] for a in registry.list_agents()] == ["fixer", "scanner"]
    assert [a["name"] for a in registry.list_agents(capability="scan")] == ["scanner"]
    assert registry.list_agents(capability="scan")[0] == {
        "name": "scanner",
        "module": "fake_agents:SucceedAgent",
        "version": "1.0.0",
        "description": "",
        "capabilities": ["scan"],
        "dependencies": [],
        "priority": "high",
        "replicas": 3,
        "status": "healthy",
    }
    assert registry.orchestrator.agent_info("fixer").dependencies == ("scanner",)


def test_failures_are_reported_not_fatal(clock: FakeClock) -> None:
    registry, _ = registry_for(
        clock,
        agent("good", "fake_agents:SucceedAgent"),
        agent("refuses", "fake_agents:RefusingInitAgent"),
        agent("crashes", "fake_agents:CrashingInitAgent"),
        agent("missing", "fake_agents:Nope"),
        agent("notagent", "fake_agents:NotAnAgent"),
        agent("outside", "json:JSONDecoder"),
        agent("noimport", "fake_agents.missing:X"),
        agent("badconfig", "fake_agents:SucceedAgent", config={"unknown": 1}),
    )
    summary = run(registry.discover_and_register_all_agents())
    assert summary["registered"] == 1
    assert summary["failed"] == 7
    errors = summary["errors"]
    assert errors["refuses"] == "initialize() returned False"
    assert errors["crashes"] == "initialize() raised OSError: disk on fire"
    assert errors["missing"] == "module 'fake_agents' has no attribute 'Nope'"
    assert errors["notagent"] == "'fake_agents:NotAnAgent' is not a BaseAgent subclass"
    assert errors["outside"] == (
        "module 'json:JSONDecoder' is outside the allowed prefixes "
        "(devskyy.agents, fake_agents); add its package to DEVSKYY_ALLOWED_MODULES"
    )
    assert errors["noimport"].startswith(
        "cannot import 'fake_agents.missing': ModuleNotFoundError: "
    )
    assert errors["badconfig"].startswith("ValidationError: 1 validation error for FakeConfig")
    health = run(registry.health_check_all())
    assert health["healthy_agents"] == 1
    assert health["total_agents"] == 8
    assert health["agents"]["refuses"] == {
        "status": "failed",
        "healthy": False,
        "error": "initialize() returned False",
    }


def test_health_check_all_reports_each_replica(clock: FakeClock) -> None:
    registry, _ = registry_for(clock, agent("a", "fake_agents:SucceedAgent", replicas=2))
    run(registry.discover_and_register_all_agents())
    run(registry.orchestrator.call_agent("a", {}))
    health = run(registry.health_check_all())
    assert health["healthy_agents"] == 1
    assert health["total_agents"] == 1
    report = health["agents"]["a"]
    assert report["status"] == "healthy"
    assert report["circuit_open"] is False
    assert [r["metrics"]["total_calls"] for r in report["replicas"]] == [1, 0]
    assert registry.agent_info("a")["metrics"]["total_calls"] == 1
    with pytest.raises(NotFound, match=r"^agent 'zz' is not registered$"):
        registry.agent_info("zz")


def test_rediscovery_keeps_unchanged_updates_changed_removes_gone(clock: FakeClock) -> None:
    a = agent("a", "fake_agents:SucceedAgent")
    b = agent("b", "fake_agents:SucceedAgent")
    registry, state = registry_for(clock, a, b)
    run(registry.discover_and_register_all_agents())
    old_a, old_b = registry.get_agent("a"), registry.get_agent("b")
    b2 = agent("b", "fake_agents:SucceedAgent", config={"label": "v2"})
    c = agent("c", "fake_agents:SucceedAgent")
    state[0] = ResourceSet((a, b2, c))
    summary = run(registry.discover_and_register_all_agents())
    assert summary["agents"] == {"a": "unchanged", "b": "updated", "c": "registered"}
    assert registry.get_agent("a") is old_a
    assert registry.get_agent("b") is not old_b
    assert isinstance(old_b, ScriptedAgent)
    assert old_b.shut_down
    state[0] = ResourceSet((b2,))
    summary = run(registry.discover_and_register_all_agents())
    assert summary["agents"] == {"a": "removed", "c": "removed", "b": "unchanged"}
    assert registry.orchestrator.agent_names == ["b"]
    assert isinstance(old_a, ScriptedAgent)
    assert old_a.shut_down


def test_a_failing_update_keeps_the_running_version(clock: FakeClock) -> None:
    a = agent("a", "fake_agents:SucceedAgent", config={"label": "v1"})
    registry, state = registry_for(clock, a)
    run(registry.discover_and_register_all_agents())
    state[0] = ResourceSet((agent("a", "fake_agents:RefusingInitAgent"),))
    summary = run(registry.discover_and_register_all_agents())
    assert summary["agents"] == {"a": "failed (previous version serving)"}
    assert run(registry.orchestrator.call_agent("a", {}))["label"] == "v1"


MODULE_V1 = """
from typing import Any
from devskyy.runtime.agent import BaseAgent

class Reloadable(BaseAgent):
    def __init__(self) -> None:
        super().__init__(agent_name="Reloadable", version="{version}")

    async def initialize(self) -> bool:
        self.status = BaseAgent.AgentStatus.HEALTHY
        return {ready}

    async def shutdown(self) -> None:
        SHUTDOWNS.append(self.version)

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        return {{"version": "{version}"}}

SHUTDOWNS: list[str] = []
"""


def test_reload_swaps_only_after_initialize(
    clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"reloadable_{uuid.uuid4().hex[:8]}"
    source = tmp_path / f"{name}.py"
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", f"fake_agents,{name}")
    source.write_text(MODULE_V1.format(version="1.0.0", ready="True"))
    registry, _ = registry_for(clock, agent("r", f"{name}:Reloadable", replicas=2))
    try:
        run(registry.discover_and_register_all_agents())
        call = registry.orchestrator.call_agent
        assert run(call("r", {})) == {"version": "1.0.0"}

        # A syntax error: the old code keeps serving and the error is reported.
        source.write_text("this is not python (\n" + "#" * 40)
        result = run(registry.reload("r"))
        assert result["status"] == "failed"
        assert result["serving"] == "previous version"
        assert result["error"].startswith(f"cannot import {name!r}: SyntaxError: ")
        assert run(call("r", {})) == {"version": "1.0.0"}

        # New code whose initialize() returns False: still the old one.
        source.write_text(MODULE_V1.format(version="2.0.0", ready="False") + "# pad\n")
        result = run(registry.reload("r"))
        assert result == {
            "agent": "r",
            "status": "failed",
            "error": "initialize() returned False",
            "serving": "previous version",
        }
        assert run(call("r", {})) == {"version": "1.0.0"}
        assert run(registry.health_check_all())["healthy_agents"] == 1

        # Good new code: swapped in, the old instances are shut down.
        source.write_text(MODULE_V1.format(version="3.0.0", ready="True") + "# padding\n" * 3)
        result = run(registry.reload("r"))
        assert result == {
            "agent": "r",
            "status": "reloaded",
            "module": f"{name}:Reloadable",
            "version": "3.0.0",
            "replicas": 2,
        }
        assert run(call("r", {})) == {"version": "3.0.0"}
        # Both 1.0.0 instances were shut down after the swap (the module's list was
        # re-created by the last reload, so the failed 2.0.0 instance is not in it).
        assert sys.modules[name].SHUTDOWNS == ["1.0.0", "1.0.0"]
        assert "r" not in registry.failures
    finally:
        sys.modules.pop(name, None)


def test_reload_drains_calls_in_flight(
    clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A module of our own to reload (reloading fake_agents would replace its classes).
    name = f"gated_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        "from fake_agents import GateAgent\n\n\nclass Gated(GateAgent):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", f"fake_agents,{name}")
    registry, _ = registry_for(clock, agent("g", f"{name}:Gated"))

    async def scenario() -> tuple[bool, bool, dict[str, Any]]:
        await registry.discover_and_register_all_agents()
        old = registry.get_agent("g")
        assert isinstance(old, GateAgent)
        GateAgent.gate = asyncio.Event()
        in_flight = asyncio.create_task(registry.orchestrator.call_agent("g", {"tag": "old"}))
        await asyncio.sleep(0)
        reloading = asyncio.create_task(registry.reload("g"))
        for _ in range(5):
            await asyncio.sleep(0)
        shut_while_busy = old.shut_down
        GateAgent.gate.set()
        result = await in_flight
        await reloading
        return shut_while_busy, old.shut_down, result

    try:
        busy, after, result = run(scenario())
    finally:
        sys.modules.pop(name, None)
    assert (busy, after) == (False, True)
    assert result == {"tag": "old"}


def test_reload_unknown_agent(clock: FakeClock) -> None:
    registry, _ = registry_for(clock)
    with pytest.raises(NotFound, match=r"^agent 'x' is not applied$"):
        run(registry.reload("x"))


def test_load_class_refuses_outside_prefixes(clock: FakeClock) -> None:
    registry, _ = registry_for(clock)
    with pytest.raises(AgentLoadError, match="outside the allowed prefixes"):
        registry.load_class("os.path:join")


def test_explicit_prefixes_override_the_environment(clock: FakeClock) -> None:
    orch = Orchestrator(clock)
    registry = Registry(orch, ResourceSet(), clock=clock, allowed_prefixes=[])
    assert registry.prefixes() == ("devskyy.agents",)
    with pytest.raises(AgentLoadError):
        registry.load_class("fake_agents:SucceedAgent")


def test_shutdown_retires_everything(clock: FakeClock) -> None:
    registry, _ = registry_for(clock, agent("a", "fake_agents:SucceedAgent", replicas=2))
    run(registry.discover_and_register_all_agents())
    instances = registry.orchestrator.instances("a")
    run(registry.shutdown())
    assert all(isinstance(i, ScriptedAgent) and i.shut_down for i in instances)
    assert registry.list_agents() == []


def test_execute_workflow_returns_the_guide_shape(clock: FakeClock) -> None:
    workflow = Workflow.model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "Workflow",
            "metadata": {"name": "scan_and_fix"},
            "spec": {
                "params": {"target_path": {"type": "string", "default": "./src"}},
                "steps": [
                    {
                        "name": "scan",
                        "agent": "scanner",
                        "input": {"path": "${{ params.target_path }}"},
                    },
                    {
                        "name": "fix",
                        "agent": "fixer",
                        "needs": ["scan"],
                        "input": {"files": "${{ steps.scan.output.kwargs_keys }}"},
                    },
                ],
            },
        }
    )
    registry, _ = registry_for(
        clock,
        agent("scanner", "fake_agents:RecordingAgent"),
        agent("fixer", "fake_agents:RecordingAgent", dependencies=["scanner"]),
        workflow,
    )

    async def scenario() -> dict[str, Any]:
        await registry.discover_and_register_all_agents()
        return await registry.execute_workflow("scan_and_fix", {"target_path": "./app"})

    result = run(scenario())
    assert result["status"] == "completed"
    assert result["errors"] == []
    assert result["scan"]["agent"] == "scanner"
    assert result["scan"]["kwargs_keys"] == ["path"]
    assert result["fix"]["kwargs_keys"] == ["files"]
    with pytest.raises(NotFound):
        run(registry.execute_workflow("nope", {}))


def test_a_label_only_change_keeps_the_running_instances(clock: FakeClock) -> None:
    a = agent("a", "fake_agents:SucceedAgent")
    registry, state = registry_for(clock, a)
    run(registry.discover_and_register_all_agents())
    running = registry.get_agent("a")
    relabelled = a.model_copy(
        update={"metadata": a.metadata.model_copy(update={"labels": {"team": "ops"}})}
    )
    state[0] = ResourceSet((relabelled,))
    summary = run(registry.discover_and_register_all_agents())
    assert summary["agents"] == {"a": "unchanged"}
    assert registry.get_agent("a") is running


def test_installed_entry_points_are_read_only_for_a_module_no_other_prefix_allows(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading every installed distribution's entry points costs tens of milliseconds in
    a large environment: an agent under ``devskyy.agents`` or an environment prefix loads
    without it; a module registered only as an entry point loads after one read."""
    reads: list[int] = []

    def entry_points() -> list[str]:
        reads.append(1)
        return ["fake_workflow_agents"]

    monkeypatch.setattr(manifests, "entry_point_modules", entry_points)
    registry, _ = registry_for(clock)
    assert registry.load_class("fake_agents:SucceedAgent").__name__ == "SucceedAgent"
    assert registry.load_class("devskyy.agents.seo:SeoAgent").__name__ == "SeoAgent"
    assert reads == []
    assert registry.load_class("fake_workflow_agents:StepAgent").__name__ == "StepAgent"
    assert registry.load_class("fake_workflow_agents:StepAgent").__name__ == "StepAgent"
    assert reads == [1]
    with pytest.raises(AgentLoadError, match="outside the allowed prefixes"):
        registry.load_class("os.path:join")
    assert reads == [1]
