"""The one attempt executor: classification, breakers, deadline, gate, hooks, the runner seam."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fake_agents import SucceedAgent

from devskyy.adapters.clock import FakeClock
from devskyy.core.breaker import Breaker, BreakerPolicy, BreakerState
from devskyy.core.retry import Fault, RetryPolicy
from devskyy.errors import (
    BrokenResult,
    CircuitOpen,
    MissingInput,
    NotFound,
    PermanentError,
    RetriesExhausted,
    StepTimeout,
    TemporaryError,
)
from devskyy.model.manifests import Priority
from devskyy.runtime.agent import AgentContext
from devskyy.runtime.attempt import AttemptExecutor, Plan, StepBreaker
from devskyy.runtime.orchestrator import Orchestrator
from devskyy.runtime.queue import PriorityGate


class Script:
    """A call that fails with the queued errors, then returns ``{"n": calls}``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return {"n": self.calls}


def cell(threshold: int = 2) -> StepBreaker:
    return StepBreaker(Breaker(BreakerPolicy(failure_threshold=threshold)), "step 's'")


@pytest.mark.parametrize(
    ("error", "fault"),
    [
        (RuntimeError("boom"), Fault.AGENT),
        (TemporaryError("later"), Fault.AGENT),
        (StepTimeout("slow"), Fault.AGENT),
        (RetriesExhausted(3, RuntimeError("x")), Fault.AGENT),
        (BrokenResult("a list"), Fault.AGENT),
        (PermanentError("declined"), Fault.REQUEST),
        (MissingInput("no order"), Fault.REQUEST),
        (NotFound("no agent"), Fault.REQUEST),
        (ValueError("listed"), Fault.REQUEST),
        (asyncio.CancelledError(), Fault.CANCELLED),
    ],
)
def test_one_classification_for_the_policy_and_the_breaker(
    clock: FakeClock, error: BaseException, fault: Fault
) -> None:
    policy = RetryPolicy(max_attempts=2, non_retryable_errors=frozenset({"ValueError"}))
    assert policy.classify(error) is fault
    assert policy.retryable(error) is (fault is Fault.AGENT)
    breaker = cell(threshold=1)
    outcomes: list[str] = []
    plan = Plan(
        "agent 'x'",
        policy,
        breakers=(breaker,),
        observe=lambda _s, outcome, _e: outcomes.append(outcome),
    )

    async def fail() -> None:
        raise error

    with pytest.raises(type(error)):
        asyncio.run(AttemptExecutor(clock).once(fail, plan))
    # The breaker counts exactly what the policy would retry.
    opened = breaker.breaker.state is BreakerState.OPEN
    assert opened is (fault is Fault.AGENT)
    assert outcomes == [fault.outcome]


def test_retries_sleep_by_the_clock_and_hooks_run_in_order(clock: FakeClock) -> None:
    events: list[str] = []
    policy = RetryPolicy(max_attempts=3, initial_interval=2.0, backoff_coefficient=3.0)
    plan = Plan(
        "agent 'x'",
        policy,
        on_retry=lambda n, exc, delay: events.append(f"retry {n} {exc} {delay:g}"),
        before_attempt=lambda n: events.append(f"attempt {n}"),
    )
    call = Script(RuntimeError("one"), RuntimeError("two"))
    done = asyncio.run(AttemptExecutor(clock, lambda: 0.5).run(call, plan))
    assert (done.result, done.error, done.attempts) == ({"n": 3}, None, 3)
    assert clock.sleeps == [2.0, 6.0]
    assert events == ["retry 1 one 2", "attempt 2", "retry 2 two 6", "attempt 3"]


def test_giving_up_says_why(clock: FakeClock) -> None:
    plan = Plan("a", RetryPolicy(max_attempts=2, initial_interval=1.0))
    executor = AttemptExecutor(clock)
    done = asyncio.run(executor.run(Script(*[RuntimeError("x")] * 5), plan))
    assert (done.attempts, done.reason) == (2, "attempt 2 of 2 failed")
    assert done.describe_error() == "RuntimeError: x (attempt 2 of 2 failed)"
    refused = asyncio.run(executor.run(Script(PermanentError("no")), plan))
    assert (refused.attempts, refused.reason) == (1, "permanent: not retried")


def test_the_deadline_bounds_attempts_and_retries(clock: FakeClock) -> None:
    policy = RetryPolicy(max_attempts=5, initial_interval=10.0)
    deadline = clock.monotonic() + 5.0
    plan = Plan(
        "step 's'",
        policy,
        deadline=deadline,
        deadline_reason="the workflow timeout leaves no time to retry",
        deadline_error="step 's': workflow timed out",
    )
    done = asyncio.run(AttemptExecutor(clock).run(Script(RuntimeError("x")), plan))
    assert (done.attempts, done.reason) == (1, "the workflow timeout leaves no time to retry")
    clock.advance(5.0)
    with pytest.raises(StepTimeout, match=r"^step 's': workflow timed out$"):
        asyncio.run(AttemptExecutor(clock).once(Script(), plan))


def test_timeouts_are_ours_only_when_our_timer_fired(clock: FakeClock) -> None:
    async def hang() -> None:
        await asyncio.Event().wait()

    async def own() -> None:
        raise TimeoutError("upstream API")

    executor = AttemptExecutor(clock)
    with pytest.raises(StepTimeout, match=r"^agent 'x' did not answer within 0.01s$"):
        asyncio.run(executor.once(hang, Plan("agent 'x'", timeout=0.01)))
    with pytest.raises(TimeoutError, match=r"^upstream API$"):
        asyncio.run(executor.once(own, Plan("agent 'x'", timeout=5.0)))


def test_a_refusing_breaker_gives_back_the_probes_already_taken(clock: FakeClock) -> None:
    now = clock.monotonic()
    # Opened 5 s ago with a 1 s reset: half-open now, one probe allowed.
    first = StepBreaker(Breaker(BreakerPolicy(1, reset_timeout=1.0)).on_failure(now - 5), "one")
    # Opened just now with a 60 s reset: refuses.
    second = StepBreaker(Breaker(BreakerPolicy(1, reset_timeout=60)).on_failure(now), "step 's'")
    seen: list[str] = []
    plan = Plan("x", breakers=(first, second), observe=lambda _s, o, _e: seen.append(o))
    with pytest.raises(CircuitOpen, match=r"^step 's': circuit open; retry after 60.0s$"):
        asyncio.run(AttemptExecutor(clock).once(Script(), plan))
    assert first.breaker.state is BreakerState.HALF_OPEN
    assert first.breaker.probes == 0  # its probe slot was given back
    assert seen == ["rejected"]


def test_the_gate_is_held_for_an_attempt_never_across_a_sleep(clock: FakeClock) -> None:
    gate = PriorityGate(1)
    held: list[int] = []

    async def call() -> dict[str, Any]:
        held.append(gate.running)
        if held.count(1) < 3:
            raise RuntimeError("again")
        return {}

    async def sleep(seconds: float) -> None:
        held.append(-gate.running)  # 0 while sleeping: the slot was released

    clock.sleep = sleep  # type: ignore[method-assign]
    plan = Plan("x", RetryPolicy(max_attempts=3), gate=gate, priority=Priority.HIGH)
    done = asyncio.run(AttemptExecutor(clock).run(call, plan))
    assert done.error is None
    assert held == [1, 0, 1, 0, 1]
    assert gate.running == 0


class JsonWireRunner:
    """A step runner that ships inputs and outputs as JSON text, as a remote one would."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator
        self.shipped: list[str] = []

    async def run_attempt(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        wire = json.dumps({"agent": name, "inputs": inputs})
        self.shipped.append(wire)
        request = json.loads(wire)
        agent = self.orchestrator.instances(request["agent"])[0]
        output = await agent.execute_core_function(**request["inputs"])
        return dict(json.loads(json.dumps(output)))


def test_a_step_runner_runs_one_attempt_and_devskyy_keeps_the_decisions(
    clock: FakeClock,
) -> None:
    orch = Orchestrator(clock, random_source=lambda: 0.5)
    runner = JsonWireRunner(orch)
    orch.runner = runner
    agent = SucceedAgent()
    agent.bind(AgentContext(name="flaky", config={"failures": 2}, clock=clock))

    async def scenario() -> dict[str, Any]:
        await orch.register_agent(agent, ["flaky"])
        return await orch.execute_task("t", {"x": 1}, ["flaky"])

    result = asyncio.run(scenario())
    assert (result["status"], result["attempts"]) == ("completed", {"flaky": 3})
    assert runner.shipped == ['{"agent": "flaky", "inputs": {"x": 1}}'] * 3
    assert clock.sleeps == [1.0, 2.0]  # the retries are devskyy's, not the runner's
    assert orch.get_agent_metrics("flaky")["total_calls"] == 3
