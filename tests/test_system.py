"""open_system: the one documented way to get the runtime objects, from live state."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from fake_agents import ScriptedAgent

import devskyy
from devskyy.adapters.clock import FakeClock
from devskyy.adapters.db import open_engine
from devskyy.adapters.state_store import SqlStateStore
from devskyy.model.manifests import Agent, Workflow
from devskyy.model.resources import ResourceSet
from devskyy.runtime.reconciler import Reconciler
from devskyy.runtime.security import SecurityManager
from devskyy.runtime.system import System, open_system


def doc(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "devskyy.dev/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def apply(url: str, clock: FakeClock) -> None:
    desired = ResourceSet(
        (
            Agent.model_validate(
                doc(
                    "Agent",
                    "scanner",
                    {
                        "module": "fake_agents:RecordingAgent",
                        "capabilities": ["scan"],
                        "priority": "high",
                    },
                )
            ),
            Agent.model_validate(
                doc(
                    "Agent",
                    "fixer",
                    {
                        "module": "fake_agents:RecordingAgent",
                        "capabilities": ["fix"],
                        "dependencies": ["scanner"],
                        "replicas": 2,
                    },
                )
            ),
            Workflow.model_validate(
                doc(
                    "Workflow",
                    "scan_and_fix",
                    {
                        "params": {"target_path": {"type": "string", "default": "./src"}},
                        "steps": [
                            {
                                "name": "scan",
                                "agent": "scanner",
                                "input": {"path": "${{ params.target_path }}"},
                            },
                            {
                                "name": "fix",
                                "capability": "fix",
                                "needs": ["scan"],
                                "input": {"found": "${{ steps.scan.output.agent }}"},
                            },
                        ],
                    },
                )
            ),
        )
    )
    engine = open_engine(url)
    Reconciler(SqlStateStore(engine), clock).apply_desired(desired, source="test")
    engine.dispose()


@pytest.fixture(autouse=True)
def _allow_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_agents")


def test_exports() -> None:
    assert devskyy.open_system is open_system
    assert devskyy.System is System


def test_open_system_builds_the_applied_agents(state_url: str, clock: FakeClock) -> None:
    apply(state_url, clock)

    async def scenario() -> tuple[System, dict[str, Any], dict[str, Any], dict[str, Any]]:
        async with await open_system(state_url, clock=clock) as system:
            assert system.discovery["agents"] == {"fixer": "registered", "scanner": "registered"}
            result = await system.registry.execute_workflow(
                workflow_name="scan_and_fix", parameters={"target_path": "./app"}
            )
            task = await system.orchestrator.execute_task(
                task_type="scan_and_fix",
                parameters={"target_path": "./src"},
                required_capabilities=["scan", "fix"],
                priority=devskyy.ExecutionPriority.HIGH,
            )
            health = await system.registry.health_check_all()
        return system, result, task, health

    system, result, task, health = run(scenario())
    assert result["status"] == "completed"
    assert result["scan"]["agent"] == "scanner"
    assert result["fix"]["agent"] == "fixer"
    assert task["status"] == "completed"
    assert task["agents"] == ["scanner", "fixer"]
    assert f"{health['healthy_agents']}/{health['total_agents']}" == "2/2"
    assert system.closed
    # Runs and task history are in the store: a new system sees them.
    again = run(open_system(state_url, clock=clock, start_agents=False))
    assert [h["task_type"] for h in again.orchestrator.execution_history] == ["scan_and_fix"]
    assert again.workflows is not None
    assert again.registry.list_agents() == []
    run(again.close())
    run(again.close())  # idempotent


def test_close_shuts_agents_down(state_url: str, clock: FakeClock) -> None:
    apply(state_url, clock)
    system = run(open_system(state_url, clock=clock))
    instances = system.orchestrator.instances("fixer")
    assert len(instances) == 2
    run(system.close())
    assert all(isinstance(i, ScriptedAgent) and i.shut_down for i in instances)


def test_default_url_is_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    system = run(open_system(clock=FakeClock()))
    assert system.url == f"sqlite:///{tmp_path / '.devskyy' / 'state.db'}"
    assert (tmp_path / ".devskyy" / "state.db").exists()
    assert system.discovery["total_agents"] == 0
    run(system.close())


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_close_writes_the_security_managers_buffered_audit_events(
    state_url: str, clock: FakeClock
) -> None:
    async def scenario() -> None:
        system = await open_system(state_url, clock=clock, start_agents=False)
        manager = system.security_manager()
        assert system.security_manager() is manager  # one per system
        assert manager.check_permission("nobody", "database", "write") is False
        await system.close()

    asyncio.run(scenario())
    reader = SecurityManager(open_engine(state_url), clock)
    events = reader.get_audit_log(agent_name="nobody")
    assert [(e["event_type"], e["outcome"]) for e in events] == [("permission.denied", "denied")]
