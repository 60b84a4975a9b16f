"""Starting a run's agents in two waves (issue 13, point 5; ``runtime.agent_start``).

Which agents a workflow calls, which of them its first steps need, and the registry's
background starts: a step whose agent is still starting waits for it, one that failed is
reported before its step fails with the orchestrator's own error, and shutting down
waits for (or, cancelled, cuts short) what is still starting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from fake_agents import ScriptedAgent

from devskyy.adapters.clock import FakeClock
from devskyy.core.tasks import TaskRequest
from devskyy.model.manifests import Agent, Workflow
from devskyy.model.resources import ResourceSet
from devskyy.model.runs import RunRecord, RunStatus, StepRecord
from devskyy.runtime.agent_start import WaitingCaller, called_by, task_agents, waves
from devskyy.runtime.orchestrator import Orchestrator
from devskyy.runtime.registry import Registry


class SlowStart(ScriptedAgent):
    """``initialize()`` waits for ``gate`` (when set), then succeeds or, with ``refuse``,
    returns False; every instance built is kept in ``built``."""

    gate: asyncio.Event | None = None
    refuse = False
    built: list[SlowStart] = []

    async def initialize(self) -> bool:
        SlowStart.built.append(self)
        if SlowStart.gate is not None:
            await SlowStart.gate.wait()
        if SlowStart.refuse:
            return False
        return await super().initialize()


@pytest.fixture(autouse=True)
def _allow_test_agents(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", f"fake_agents,{__name__}")
    SlowStart.gate = None
    SlowStart.refuse = False
    SlowStart.built = []


def agent(name: str, module: str = "fake_agents:SucceedAgent", **spec: Any) -> Agent:
    return Agent.model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "Agent",
            "metadata": {"name": name},
            "spec": {"module": module, **spec},
        }
    )


def workflow(name: str, *steps: dict[str, Any]) -> Workflow:
    return Workflow.model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "Workflow",
            "metadata": {"name": name},
            "spec": {"steps": list(steps)},
        }
    )


def by_name(*agents: Agent) -> dict[str, Agent]:
    return {a.name: a for a in agents}


# -- which agents, in which wave ---------------------------------------------------------


APPLIED = by_name(
    agent("a", dependencies=["d"]),
    agent("b", dependencies=["e", "a"]),
    agent("c", capabilities=["x"]),
    agent("c2", capabilities=["x"], dependencies=["g"]),
    agent("d"),
    agent("e"),
    agent("f"),
    agent("g"),
    agent("unused"),
)


def test_the_first_wave_is_the_first_steps_agents_and_every_capability_provider() -> None:
    flow = workflow(
        "w",
        {"name": "s1", "agent": "a"},
        {"name": "s2", "agent": "f", "needs": ["s1"]},
        {"name": "s3", "agent": "b", "needs": ["s2"]},
        {"name": "s4", "capability": "x", "needs": ["s3"]},
        {"name": "s5", "agent": "a", "needs": ["s1"]},
    )
    first, later = waves(flow, APPLIED)
    # s1's agent and its dependency; both providers of x (the engine resolves among the
    # agents running when s4 starts) and c2's dependency.
    assert first == {"a", "d", "c", "c2", "g"}
    # In the order the steps first call them; then the dependencies no step calls.
    assert later == ["f", "b", "e"]
    assert first | set(later) == called_by(flow, APPLIED)
    assert "unused" not in called_by(flow, APPLIED)


def test_an_agent_that_a_first_step_calls_is_not_started_again_later() -> None:
    flow = workflow(
        "w",
        {"name": "one", "agent": "f"},
        {"name": "two", "agent": "e"},
        {"name": "three", "agent": "f", "needs": ["one", "two"]},
    )
    assert waves(flow, APPLIED) == ({"e", "f"}, [])


def test_an_agent_that_is_not_applied_is_still_named_so_that_its_start_fails() -> None:
    flow = workflow("w", {"name": "one", "agent": "f"}, {"name": "two", "agent": "ghost"})
    assert waves(flow, APPLIED) == ({"f", "ghost"}, [])
    assert called_by(flow, APPLIED) == {"f", "ghost"}


def test_a_task_run_calls_the_agents_its_capabilities_select() -> None:
    params = TaskRequest("t", {"p": 1}, ("x",)).as_params()
    # c and c2 both provide x: the best by priority, then name, and its dependencies.
    assert task_agents(params, APPLIED) == {"c"}
    ranked = {**APPLIED, "c2": agent("c2", capabilities=["x"], priority="high")}
    assert task_agents(params, ranked) == {"c2"}
    assert task_agents(TaskRequest("t", {}, ("nothing",)).as_params(), APPLIED) == set()
    assert task_agents({"not": "a task"}, APPLIED) == set()


# -- the registry's background starts ----------------------------------------------------

CHAIN = workflow(
    "chain",
    {"name": "first", "agent": "quick"},
    {"name": "then", "agent": "slow", "needs": ["first"]},
)


def registry_for(clock: FakeClock) -> Registry:
    live = ResourceSet((agent("quick"), agent("slow", f"{__name__}:SlowStart"), CHAIN))
    return Registry(Orchestrator(clock, random_source=lambda: 0.5), live, clock=clock)


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def steps(record: RunRecord) -> list[tuple[str, str, int, str | None]]:
    return [(s.name, s.status.value, s.attempts, s.error) for s in record.steps]


def test_a_step_whose_agent_is_still_starting_waits_for_it(clock: FakeClock) -> None:
    registry = registry_for(clock)
    seen: list[tuple[str, str]] = []
    errors: dict[str, str] = {}

    def listen(_run: RunRecord, step: StepRecord) -> None:
        seen.append((step.name, step.status.value))

    async def scenario() -> RunRecord:
        SlowStart.gate = asyncio.Event()
        await registry.discover_and_register_all_agents({"quick"})
        registry.start_later(["slow"], errors.update)
        engine = registry.workflow_engine()
        assert isinstance(engine.caller, WaitingCaller)
        running = asyncio.create_task(engine.run("chain", on_step=listen))
        await until(lambda: ("then", "running") in seen)
        # The second step has started; its agent has not: it waits.
        assert ("first", "succeeded") in seen
        assert len(SlowStart.built) == 1
        assert registry.get_agent("slow") is None
        assert registry.background.starting("slow") is not None
        for _ in range(50):
            await asyncio.sleep(0)
        assert not running.done()
        SlowStart.gate.set()
        return await running

    record = asyncio.run(scenario())
    assert record.status is RunStatus.SUCCEEDED
    assert steps(record) == [("first", "succeeded", 1, None), ("then", "succeeded", 1, None)]
    assert errors == {}
    assert registry.background.starting("slow") is None


def test_an_agent_that_fails_to_start_is_reported_before_its_step_fails(
    clock: FakeClock,
) -> None:
    registry = registry_for(clock)
    seen: list[tuple[str, str]] = []
    reports: list[tuple[dict[str, str], list[tuple[str, str]]]] = []
    SlowStart.refuse = True

    def listen(_run: RunRecord, step: StepRecord) -> None:
        seen.append((step.name, step.status.value))

    async def scenario() -> RunRecord:
        await registry.discover_and_register_all_agents({"quick"})
        registry.start_later(["slow"], lambda errors: reports.append((errors, list(seen))))
        return await registry.workflow_engine().run("chain", on_step=listen)

    record = asyncio.run(scenario())
    assert record.status is RunStatus.FAILED
    # The error when every agent started before the run: the orchestrator's own.
    assert steps(record) == [
        ("first", "succeeded", 1, None),
        ("then", "failed", 1, "NotFound: agent 'slow' is not registered"),
    ]
    assert [errors for errors, _ in reports] == [{"slow": "initialize() returned False"}]
    assert ("then", "failed") not in reports[0][1]
    assert registry.failures == {"slow": "initialize() returned False"}
    assert SlowStart.built[0].shut_down


def test_shutdown_waits_for_the_starts_and_shuts_down_what_they_built(
    clock: FakeClock,
) -> None:
    registry = registry_for(clock)

    async def scenario() -> None:
        SlowStart.gate = asyncio.Event()
        registry.start_later(["quick", "slow"], lambda errors: None)
        await until(lambda: bool(SlowStart.built))
        closing = asyncio.create_task(registry.shutdown())
        for _ in range(50):
            await asyncio.sleep(0)
        assert not closing.done()  # "slow" is still initializing
        SlowStart.gate.set()
        await closing

    asyncio.run(scenario())
    assert SlowStart.built[0].shut_down
    assert registry.list_agents() == []


def test_a_cancelled_shutdown_cuts_the_starts_short_and_leaves_nothing_running(
    clock: FakeClock,
) -> None:
    registry = registry_for(clock)

    async def scenario() -> None:
        SlowStart.gate = asyncio.Event()  # never set: "slow" would initialize forever
        registry.start_later(["slow", "quick"], lambda errors: None)
        await until(lambda: bool(SlowStart.built))
        closing = asyncio.create_task(registry.shutdown())
        await asyncio.sleep(0)
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing

    asyncio.run(scenario())
    assert SlowStart.built[0].shut_down  # the half-started instance
    assert registry.background.starting("slow") is None
    assert registry.background.starting("quick") is None
    assert registry.list_agents() == []


def test_a_failing_report_still_releases_the_steps_and_surfaces_at_shutdown(
    clock: FakeClock,
) -> None:
    registry = registry_for(clock)
    SlowStart.refuse = True

    def report(errors: dict[str, str]) -> None:
        raise OSError("stderr is gone")

    async def scenario() -> RunRecord:
        await registry.discover_and_register_all_agents({"quick"})
        registry.start_later(["slow"], report)
        record = await registry.workflow_engine().run("chain")
        with pytest.raises(OSError, match="stderr is gone"):
            await registry.shutdown()
        return record

    record = asyncio.run(scenario())
    assert steps(record)[1] == ("then", "failed", 1, "NotFound: agent 'slow' is not registered")
