"""BaseAgent V2: the guide's example, abstract core function, self-healing, tracking."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from fake_agents import FakeConfig, FlakyAgent, SucceedAgent
from pydantic import ValidationError

import devskyy
from devskyy.adapters.clock import FakeClock
from devskyy.errors import PermanentError, RetriesExhausted
from devskyy.model.manifests import RetrySpec
from devskyy.runtime.agent import AgentContext, AgentStatus, BaseAgent

GUIDE_EXAMPLE = '''
from agent.modules.base_agent import BaseAgent

class MyAgentV2(BaseAgent):
    def __init__(self):
        super().__init__(agent_name="My Agent", version="2.0.0")

    async def initialize(self) -> bool:
        """Initialize agent resources"""
        try:
            # Your initialization code
            self.status = BaseAgent.AgentStatus.HEALTHY
            return True
        except Exception as e:
            self.status = BaseAgent.AgentStatus.FAILED
            return False

    async def execute_core_function(self, **kwargs) -> Dict[str, Any]:
        """Core agent functionality"""
        # Your agent logic
        return {"result": "success"}

    @BaseAgent.with_healing
    async def my_method(self, data):
        """Method with automatic self-healing"""
        # Your code with automatic retry on failure
        pass
'''


def guide_class() -> type[BaseAgent]:
    # The guide's block, verbatim but for the import path (and the typing names it uses).
    source = "from typing import Any, Dict\n" + GUIDE_EXAMPLE.replace(
        "from agent.modules.base_agent import BaseAgent", "from devskyy import BaseAgent"
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, "guide_example.py", "exec"), namespace)
    cls = namespace["MyAgentV2"]
    assert issubclass(cls, BaseAgent)
    return cls


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def bound(agent: BaseAgent, clock: FakeClock, retry: RetrySpec | None = None, **config: Any) -> Any:
    agent.bind(
        AgentContext(
            name="fake",
            config=config,
            clock=clock,
            retry=retry or RetrySpec(),
            random=lambda: 0.5,
        )
    )
    return agent


def test_guide_example_works_as_written() -> None:
    agent = guide_class()()
    assert agent.agent_name == "My Agent"
    assert agent.version == "2.0.0"
    assert agent.status is AgentStatus.INITIALIZING

    async def scenario() -> tuple[bool, dict[str, Any], Any, dict[str, Any]]:
        ready = await agent.initialize()
        result = await agent.execute_core_function(target="x")
        healed = await agent.my_method({"a": 1})  # type: ignore[attr-defined]
        return ready, result, healed, await agent.health_check()

    ready, result, healed, health = run(scenario())
    assert ready is True
    assert result == {"result": "success"}
    assert healed is None
    assert agent.status is BaseAgent.AgentStatus.HEALTHY
    assert health["status"] == "healthy"
    assert health["agent_name"] == "My Agent"
    assert health["version"] == "2.0.0"
    assert health["metrics"]["total_calls"] == 1


def test_agent_status_levels_are_the_guides() -> None:
    assert devskyy.BaseAgent is BaseAgent
    assert devskyy.AgentStatus is AgentStatus
    assert BaseAgent.AgentStatus is AgentStatus
    assert [s.name for s in AgentStatus] == [
        "HEALTHY",
        "DEGRADED",
        "RECOVERING",
        "FAILED",
        "INITIALIZING",
    ]


def test_execute_core_function_is_abstract() -> None:
    class Incomplete(BaseAgent):
        def __init__(self) -> None:
            super().__init__("incomplete")

    with pytest.raises(TypeError, match="execute_core_function"):
        Incomplete()  # type: ignore[abstract]


def test_bind_validates_config_with_the_config_model(clock: FakeClock) -> None:
    agent = bound(SucceedAgent(), clock, latency=2.0)
    assert agent.config == FakeConfig(latency=2.0)
    assert agent.name == "fake"
    assert agent.agent_name == "Scripted Agent"
    with pytest.raises(ValidationError):
        bound(SucceedAgent(), clock, nope=1)


def test_config_is_a_plain_dict_without_a_model(clock: FakeClock) -> None:
    agent = guide_class()()
    agent.bind(AgentContext(name="mine", config={"k": [1]}, clock=clock))
    assert agent.config == {"k": [1]}


class Healing(BaseAgent):
    def __init__(self, failures: int, error: type[Exception] = RuntimeError) -> None:
        super().__init__("healing")
        self.failures = failures
        self.error = error
        self.attempts = 0
        self.seen: list[AgentStatus] = []

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        return await self.work()

    @BaseAgent.with_healing
    async def work(self) -> dict[str, Any]:
        self.attempts += 1
        self.seen.append(self.status)
        if self.attempts <= self.failures:
            raise self.error(f"attempt {self.attempts}")
        return {"attempts": self.attempts}


def test_with_healing_retries_with_the_declared_policy(clock: FakeClock) -> None:
    retry = RetrySpec(max_attempts=4, initial_interval_seconds=0.5, backoff_coefficient=3)
    agent = bound(Healing(failures=3), clock, retry)
    run(agent.initialize())
    assert run(agent.execute_core_function()) == {"attempts": 4}
    assert clock.sleeps == [0.5, 1.5, 4.5]
    assert agent.seen == [
        AgentStatus.HEALTHY,
        AgentStatus.RECOVERING,
        AgentStatus.RECOVERING,
        AgentStatus.RECOVERING,
    ]
    assert agent.status is AgentStatus.HEALTHY
    assert agent.healing == {"retries": 3, "recoveries": 1, "gave_up": 0}


def test_with_healing_uses_jitter_from_the_context(clock: FakeClock) -> None:
    agent = Healing(failures=1)
    agent.bind(AgentContext(name="j", clock=clock, retry=RetrySpec(jitter=0.5), random=lambda: 1.0))
    run(agent.work())
    assert clock.sleeps == [1.5]


def test_with_healing_fails_when_exhausted_then_heals(clock: FakeClock) -> None:
    agent = bound(Healing(failures=5), clock, RetrySpec(max_attempts=3))
    run(agent.initialize())
    with pytest.raises(RetriesExhausted) as info:
        run(agent.execute_core_function())
    assert str(info.value) == "gave up after 3 attempt(s): RuntimeError('attempt 3')"
    assert isinstance(info.value.__cause__, RuntimeError)
    assert agent.attempts == 3
    assert clock.sleeps == [1.0, 2.0]
    assert agent.status is AgentStatus.FAILED
    assert agent.last_error == "RuntimeError: attempt 3"
    # The next call succeeds (failures were 5, attempts continue from 4): HEALTHY again.
    agent.failures = 3
    assert run(agent.execute_core_function()) == {"attempts": 4}
    assert agent.status is AgentStatus.HEALTHY
    assert agent.healing == {"retries": 2, "recoveries": 1, "gave_up": 1}
    health = run(agent.health_check())
    assert health["metrics"]["total_calls"] == 2
    assert health["metrics"]["total_errors"] == 1
    assert health["metrics"]["success_rate"] == 0.5


def test_with_healing_does_not_retry_non_retryable_errors(clock: FakeClock) -> None:
    retry = RetrySpec(max_attempts=5, non_retryable_errors=["KeyError"])
    agent = bound(Healing(failures=1, error=KeyError), clock, retry)
    run(agent.initialize())
    with pytest.raises(KeyError):
        run(agent.work())
    assert agent.attempts == 1
    assert clock.sleeps == []
    assert agent.status is AgentStatus.HEALTHY


def test_with_healing_does_not_retry_permanent_errors(clock: FakeClock) -> None:
    agent = bound(Healing(failures=1, error=PermanentError), clock, RetrySpec(max_attempts=5))
    with pytest.raises(PermanentError):
        run(agent.work())
    assert agent.attempts == 1


def test_with_healing_single_attempt_policy_fails_at_once(clock: FakeClock) -> None:
    agent = bound(Healing(failures=1), clock, RetrySpec(max_attempts=1))
    run(agent.initialize())
    with pytest.raises(RetriesExhausted):
        run(agent.work())
    assert agent.status is AgentStatus.FAILED
    assert clock.sleeps == []


def test_tracking_counts_mean_and_p95(clock: FakeClock) -> None:
    agent = bound(FlakyAgent(), clock, failures=2)
    run(agent.initialize())

    async def calls() -> None:
        for latency in [1.0, 2.0, 3.0, 4.0, 10.0]:
            agent.config = FakeConfig(failures=2, latency=latency)
            with contextlib.suppress(RuntimeError):
                await agent.execute_core_function()

    run(calls())
    metrics = agent.metrics()
    assert metrics["total_calls"] == 5
    assert metrics["total_errors"] == 2
    assert metrics["success_rate"] == 0.6
    assert metrics["mean_response_time"] == 4.0
    # Linear interpolation: rank 0.95 * 4 = 3.8 between 4.0 and 10.0.
    assert metrics["p95_response_time"] == 8.8
    assert metrics["last_response_time"] == 10.0


def test_success_rate_is_over_the_recent_window(clock: FakeClock) -> None:
    class Small(FlakyAgent):
        metrics_window = 10

    agent = bound(Small(), clock, failures=10)

    async def calls() -> None:
        for _ in range(20):
            with contextlib.suppress(RuntimeError):
                await agent.execute_core_function()

    run(calls())
    metrics = agent.metrics()
    assert metrics["total_calls"] == 20
    assert metrics["total_errors"] == 10
    assert metrics["window_calls"] == 10
    assert metrics["success_rate"] == 1.0


def test_latency_anomaly_is_detected_and_degrades(clock: FakeClock) -> None:
    agent = bound(SucceedAgent(), clock, latency=1.0)
    run(agent.initialize())

    async def calls() -> None:
        for _ in range(20):
            await agent.execute_core_function()
        assert agent.status is AgentStatus.HEALTHY
        agent.config = FakeConfig(latency=1.2)
        await agent.execute_core_function()

    run(calls())
    # Steady 1.0 s history: sigma is floored at 5% of the mean, so 1.2 s is z = 4.
    assert agent.status is AgentStatus.DEGRADED
    metrics = agent.metrics()
    assert metrics["anomalies_detected"] == 1
    assert metrics["latency_alarm"] is True
    assert metrics["recent_anomalies"] == [
        {"kind": "latency", "at": clock.now(), "value": 1.2, "threshold": 1.15, "score": 4.0}
    ]


def test_error_rate_anomaly_on_the_third_consecutive_error(clock: FakeClock) -> None:
    agent = bound(FlakyAgent(), clock)
    run(agent.initialize())
    statuses: list[str] = []

    async def calls() -> None:
        for _ in range(30):
            await agent.execute_core_function()
        agent.config = FakeConfig(failures=10**6)
        for _ in range(3):
            try:
                await agent.execute_core_function()
            except RuntimeError:
                statuses.append(agent.status.value)

    run(calls())
    assert statuses == ["healthy", "healthy", "degraded"]
    metrics = agent.metrics()
    assert metrics["error_rate_alarm"] is True
    assert [a["kind"] for a in metrics["recent_anomalies"]] == ["error_rate"]


def test_health_check_reports_every_figure(clock: FakeClock) -> None:
    agent = bound(SucceedAgent(), clock)
    run(agent.initialize())
    run(agent.execute_core_function())
    health = run(agent.health_check())
    assert set(health) == {"agent_name", "name", "version", "status", "healthy", "metrics"}
    assert set(health["metrics"]) == {
        "total_calls",
        "total_errors",
        "window_size",
        "window_calls",
        "window_errors",
        "success_rate",
        "error_rate",
        "mean_response_time",
        "p95_response_time",
        "last_response_time",
        "error_rate_ewma",
        "latency_alarm",
        "error_rate_alarm",
        "anomalies_detected",
        "recent_anomalies",
        "healing",
        "last_error",
    }
    assert health["healthy"] is True


def test_a_subclass_calling_super_is_counted_once(clock: FakeClock) -> None:
    class Extended(SucceedAgent):
        async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
            result = await super().execute_core_function(**kwargs)
            return {**result, "extended": True}

    agent = bound(Extended(), clock)
    assert run(agent.execute_core_function())["extended"] is True
    assert agent.metrics()["total_calls"] == 1


def test_super_chains_count_once_and_another_instance_counts_for_itself(
    clock: FakeClock,
) -> None:
    class Extended(SucceedAgent):
        async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
            return {**await super().execute_core_function(**kwargs), "level": 2}

    class Further(Extended):
        def __init__(self, helper: SucceedAgent | None = None) -> None:
            super().__init__()
            self.helper = helper

        async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
            if self.helper is not None:  # another agent of the same class, called inside
                await self.helper.execute_core_function(**kwargs)
            return {**await super().execute_core_function(**kwargs), "level": 3}

    helper = bound(Further(), clock)
    agent = bound(Further(helper), clock)
    assert run(agent.execute_core_function())["level"] == 3
    assert run(agent.execute_core_function())["level"] == 3
    assert agent.metrics()["total_calls"] == 2
    assert helper.metrics()["total_calls"] == 2
