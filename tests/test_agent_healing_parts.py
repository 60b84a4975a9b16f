"""``BaseAgent.with_healing`` builds its retry policy and attempt executor once per agent.

They were built on every call; now they are kept until what they are made of changes:
``bind`` with another retry spec, clock or random source (or one of those replaced on the
context), after which the new ones are in force.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from devskyy.adapters.clock import Clock, FakeClock
from devskyy.core.retry import RetryPolicy
from devskyy.errors import RetriesExhausted
from devskyy.model.manifests import RetrySpec
from devskyy.runtime import agent as agent_module
from devskyy.runtime.agent import AgentContext, AgentStatus, BaseAgent
from devskyy.runtime.attempt import AttemptExecutor


class Flaky(BaseAgent):
    """Fails ``failures`` times in a row, then succeeds (and counts from 0 again)."""

    def __init__(self) -> None:
        super().__init__("flaky")
        self.failures = 0
        self.failed = 0

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        return await self.work()

    @BaseAgent.with_healing
    async def work(self) -> dict[str, Any]:
        if self.failed < self.failures:
            self.failed += 1
            raise RuntimeError(f"failure {self.failed}")
        self.failed = 0
        return {"ok": True}


def run(awaitable: Any) -> Any:
    return asyncio.run(awaitable)


def context(clock: Clock, retry: RetrySpec, name: str = "flaky") -> AgentContext:
    return AgentContext(name=name, clock=clock, retry=retry, random=lambda: 0.5)


class Builds:
    """Counts the retry policies and attempt executors ``with_healing`` builds."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.policies = 0
        self.executors = 0
        compile_spec = RetryPolicy.from_spec
        builds = self

        def from_spec(spec: RetrySpec) -> RetryPolicy:
            builds.policies += 1
            return compile_spec(spec)

        class CountedExecutor(AttemptExecutor):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                builds.executors += 1
                super().__init__(*args, **kwargs)

        monkeypatch.setattr(RetryPolicy, "from_spec", staticmethod(from_spec))
        monkeypatch.setattr(agent_module, "AttemptExecutor", CountedExecutor)

    def __call__(self) -> tuple[int, int]:
        return self.policies, self.executors


def test_the_policy_and_executor_are_built_once_per_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    builds = Builds(monkeypatch)
    clock = FakeClock()
    agent = Flaky()
    agent.bind(context(clock, RetrySpec(max_attempts=3, initial_interval_seconds=1.0)))
    agent.failures = 2

    async def calls() -> None:
        for _ in range(5):
            assert await agent.execute_core_function() == {"ok": True}

    asyncio.run(calls())
    assert clock.sleeps == [1.0, 2.0] * 5  # every call retried under the same policy
    assert builds() == (1, 1)
    other = Flaky()  # each agent has its own
    other.bind(context(clock, RetrySpec()))
    run(other.work())
    assert builds() == (2, 2)


def test_binding_another_retry_spec_puts_it_in_force(monkeypatch: pytest.MonkeyPatch) -> None:
    builds = Builds(monkeypatch)
    clock = FakeClock()
    agent = Flaky()
    agent.bind(context(clock, RetrySpec(max_attempts=2, initial_interval_seconds=1.0)))
    agent.failures = 3
    with pytest.raises(RetriesExhausted, match=r"^gave up after 2 attempt\(s\)"):
        run(agent.work())
    assert (clock.sleeps, agent.status) == ([1.0], AgentStatus.FAILED)

    later = FakeClock()
    agent.bind(context(later, RetrySpec(max_attempts=4, initial_interval_seconds=0.25)))
    assert run(agent.work()) == {"ok": True}  # the third failure, then success
    assert (clock.sleeps, later.sleeps) == ([1.0], [0.25])  # the new clock, the new spec
    assert builds() == (2, 2)

    # The same context, its retry spec replaced: the new one is in force too.
    agent.context.retry = RetrySpec(max_attempts=1)
    agent.failures = 1
    with pytest.raises(RetriesExhausted, match=r"^gave up after 1 attempt\(s\)"):
        run(agent.work())
    assert later.sleeps == [0.25]
    assert builds() == (3, 3)

    # A new context made of the same spec, clock and random source changes nothing.
    same = agent.context
    agent.bind(AgentContext(name="renamed", clock=same.clock, retry=same.retry, random=same.random))
    assert run(agent.work()) == {"ok": True}
    assert builds() == (3, 3)
