"""A run session's plans: the steps of one agent share one (workflow_execution._plan).

The shared plan's hooks and deadline error name the step whose task runs them, a step
after the registered agents changed gets a plan of the agent as it is now, and an
attempt (the runner's own coroutine) whose runner is lost stops the run, resumable.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fake_agents import RecordingAgent

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.run_store import MemoryRunStore
from devskyy.errors import RunnerLost
from devskyy.model.manifests import Workflow
from devskyy.model.runs import RunStatus, StepStatus
from devskyy.runtime.agent import AgentContext
from devskyy.runtime.orchestrator import Orchestrator
from devskyy.runtime.workflows import WorkflowEngine


def workflow(steps: list[dict[str, Any]], **spec: Any) -> Workflow:
    return Workflow.model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "Workflow",
            "metadata": {"name": "wf"},
            "spec": {"steps": steps, **spec},
        }
    )


def recording(name: str, clock: FakeClock, **config: Any) -> RecordingAgent:
    agent = RecordingAgent()
    agent.bind(AgentContext(name=name, config=config, clock=clock))
    return agent


class Replacing(RecordingAgent):
    """Replaces itself in the orchestrator (a new entry for its name) while it runs."""

    orchestrator: Orchestrator
    successor: RecordingAgent

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        result = await super().execute_core_function(**kwargs)
        self.orchestrator.unregister_agent(self.name)
        assert await self.orchestrator.register_agent(self.successor)
        return result


def test_a_step_after_the_agents_changed_gets_the_agent_as_it_is_now(
    clock: FakeClock,
) -> None:
    orch = Orchestrator(clock)
    first = Replacing()
    first.bind(AgentContext(name="f", clock=clock))
    first.orchestrator = orch
    first.successor = recording("f", clock)
    wf = workflow([{"name": "a", "agent": "f"}, {"name": "b", "agent": "f", "needs": ["a"]}])
    engine = WorkflowEngine(orch, MemoryRunStore(), clock, {"wf": wf}.get)

    async def scenario() -> Any:
        assert await orch.register_agent(first)
        return await engine.run("wf")

    record = asyncio.run(scenario())
    assert record.status.value == "succeeded"
    assert (first.calls, first.successor.calls) == (1, 1)
    # b's call went through the new entry: its metrics, not the old entry's, count it.
    assert orch.get_agent_metrics("f")["total_calls"] == 1


def test_a_shared_plan_names_the_step_its_deadline_refuses(clock: FakeClock) -> None:
    """Two steps of one agent share a plan; each refused by the workflow deadline (they
    waited for the one priority slot past it) is named in its own error."""
    orch = Orchestrator(clock, max_concurrency=1)
    slow = recording("slow", clock, latency=20.0)
    quick = recording("quick", clock)
    wf = workflow(
        [
            {"name": "hold", "agent": "slow"},
            {"name": "first", "agent": "quick"},
            {"name": "second", "agent": "quick"},
        ],
        timeoutSeconds=10,
        failFast=False,
    )
    engine = WorkflowEngine(orch, MemoryRunStore(), clock, {"wf": wf}.get)

    async def scenario() -> Any:
        assert await orch.register_agent(slow)
        assert await orch.register_agent(quick)
        return await engine.run("wf")

    record = asyncio.run(scenario())
    assert quick.calls == 0
    assert record.step("hold").status is StepStatus.SUCCEEDED  # 20 s on the fake clock
    assert record.step("first").error == "StepTimeout: step 'first': workflow timed out"
    assert record.step("second").error == "StepTimeout: step 'second': workflow timed out"


class LostRunner:
    """A step runner whose backend is gone: every attempt raises RunnerLost."""

    def __init__(self) -> None:
        self.attempts = 0

    async def run_attempt(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        self.attempts += 1
        raise RunnerLost(f"the backend of {name!r} is gone")


@pytest.mark.parametrize(("retry", "events"), [(3, ["retry_wait"]), (1, [])])
def test_a_lost_runner_stops_the_run_resumable_instead_of_spending_retries(
    clock: FakeClock, retry: int, events: list[str]
) -> None:
    runner = LostRunner()
    orch = Orchestrator(clock, runner=runner)
    store = MemoryRunStore()
    wf = workflow([{"name": "a", "agent": "f", "retry": {"maxAttempts": retry}}])
    engine = WorkflowEngine(orch, store, clock, {"wf": wf}.get)

    async def scenario() -> str:
        assert await orch.register_agent(recording("f", clock))
        record = engine.create("wf", {})
        with pytest.raises(RunnerLost, match=r"^the backend of 'f' is gone$"):
            await engine.execute(record)
        return record.id

    run_id = asyncio.run(scenario())
    assert runner.attempts == 1
    stopped = store.get(run_id)
    assert stopped.status is RunStatus.INTERRUPTED
    assert stopped.error == "RunnerLost: the backend of 'f' is gone"
    assert stopped.step("a").status is StepStatus.PENDING
    ended = [e.status.value for e in store.events(run_id) if e.status is not StepStatus.RUNNING]
    assert ended == events
