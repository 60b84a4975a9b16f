"""The orchestrator: one attempt, breakers, replicas, the priority queue, tasks, TTL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fake_agents import (
    CALLS,
    FakeConfig,
    FlakyAgent,
    GateAgent,
    HangAgent,
    PermanentAgent,
    RecordingAgent,
    RejectingAgent,
    ScriptedAgent,
    SucceedAgent,
)

import devskyy
from devskyy.adapters.clock import FakeClock
from devskyy.adapters.db import open_engine
from devskyy.adapters.history_store import SqlHistoryStore
from devskyy.adapters.run_store import MemoryRunStore
from devskyy.core.tasks import TaskRequest
from devskyy.errors import CircuitOpen, NotFound, StepTimeout
from devskyy.model.manifests import CircuitBreakerSpec, Priority, RetrySpec, Workflow
from devskyy.model.runs import RunRecord, StepStatus
from devskyy.runtime.agent import AgentContext
from devskyy.runtime.orchestrator import ExecutionPriority, Orchestrator
from devskyy.runtime.workflows import WorkflowEngine


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def make(cls: type[ScriptedAgent], name: str, clock: FakeClock, **config: Any) -> ScriptedAgent:
    agent = cls()
    agent.bind(AgentContext(name=name, config=config, clock=clock))
    return agent


async def register(
    orch: Orchestrator,
    agent: ScriptedAgent,
    *,
    capabilities: list[str] | None = None,
    dependencies: list[str] | None = None,
    priority: Priority = Priority.MEDIUM,
    retry: RetrySpec | None = None,
    breaker: CircuitBreakerSpec | None = None,
    timeout: float | None = None,
) -> None:
    assert await orch.register_agent(
        agent,
        capabilities,
        dependencies,
        priority,
        retry=retry,
        circuit_breaker=breaker,
        timeout=timeout,
    )


@pytest.fixture(autouse=True)
def _reset_fakes() -> None:
    CALLS.clear()
    GateAgent.gate = None
    GateAgent.started = []


def test_guide_names_are_exported() -> None:
    assert devskyy.ExecutionPriority is Priority
    assert ExecutionPriority.CRITICAL.rank < ExecutionPriority.LOW.rank
    assert devskyy.Orchestrator is Orchestrator


def test_call_agent_is_one_attempt(clock: FakeClock) -> None:
    orch = Orchestrator(clock)

    async def scenario() -> None:
        await register(orch, make(FlakyAgent, "flaky", clock, failures=1))
        with pytest.raises(RuntimeError, match=r"^flaky failure 1$"):
            await orch.call_agent("flaky", {})
        assert await orch.call_agent("flaky", {}) == {"agent": "flaky", "call": 2, "label": ""}

    run(scenario())
    metrics = orch.get_agent_metrics("flaky")
    assert metrics["total_calls"] == 2
    assert metrics["total_errors"] == 1
    assert metrics["success_rate"] == 0.5
    assert clock.sleeps == []


def test_unknown_agent_is_not_found(clock: FakeClock) -> None:
    orch = Orchestrator(clock)
    with pytest.raises(NotFound, match=r"^agent 'ghost' is not registered$"):
        run(orch.call_agent("ghost", {}))
    with pytest.raises(NotFound, match=r"^agent 'ghost' is not registered$"):
        orch.is_circuit_open("ghost")


def test_register_initializes_and_uses_class_capabilities(clock: FakeClock) -> None:
    orch = Orchestrator(clock)
    agent = make(SucceedAgent, "ok", clock)
    assert agent.status.value == "initializing"
    run(orch.register_agent(agent))
    assert agent.status.value == "healthy"
    assert orch.agent_info("ok").capabilities == ("succeed",)
    assert orch.agent_info("ok").priority is Priority.MEDIUM


def test_breaker_opens_after_exactly_the_threshold(clock: FakeClock) -> None:
    orch = Orchestrator(clock)
    spec = CircuitBreakerSpec(failure_threshold=3, reset_timeout_seconds=30)

    async def scenario() -> list[str]:
        agent = make(FlakyAgent, "flaky", clock, failures=4)
        await register(orch, agent, breaker=spec)
        seen = []
        for _ in range(3):
            assert not orch.is_circuit_open("flaky")
            with pytest.raises(RuntimeError):
                await orch.call_agent("flaky", {})
            seen.append(orch.get_agent_metrics("flaky")["circuit_breaker"]["state"])
        with pytest.raises(
            CircuitOpen, match=r"^circuit breaker for agent 'flaky' is open; retry after 30.0s$"
        ):
            await orch.call_agent("flaky", {})
        assert agent.calls == 3  # the refused call never reached the agent
        clock.advance(29.0)
        with pytest.raises(CircuitOpen, match=r"retry after 1.0s"):
            await orch.call_agent("flaky", {})
        # After the reset timeout exactly one probe goes through; it fails: open again.
        clock.advance(1.0)
        assert not orch.is_circuit_open("flaky")
        with pytest.raises(RuntimeError, match=r"failure 4"):
            await orch.call_agent("flaky", {})
        assert orch.is_circuit_open("flaky")
        clock.advance(30.0)
        # The next probe succeeds: closed.
        assert (await orch.call_agent("flaky", {}))["call"] == 5
        seen.append(orch.get_agent_metrics("flaky")["circuit_breaker"]["state"])
        return seen

    assert run(scenario()) == ["closed", "closed", "open", "closed"]
    metrics = orch.get_agent_metrics("flaky")
    assert metrics["rejected_by_breaker"] == 2
    assert metrics["circuit_breaker"]["times_opened"] == 2


def test_half_open_lets_one_probe_through_for_all_callers(clock: FakeClock) -> None:
    orch = Orchestrator(clock)
    spec = CircuitBreakerSpec(failure_threshold=1, reset_timeout_seconds=10)

    async def probe() -> list[str]:
        flaky = make(FlakyAgent, "svc", clock, failures=1)
        await register(orch, flaky, breaker=spec)
        with pytest.raises(RuntimeError):
            await orch.call_agent("svc", {})
        clock.advance(10.0)
        gate = asyncio.Event()
        blocker = make(GateAgent, "svc", clock)
        orch.replace_replicas("svc", [blocker])
        GateAgent.gate = gate
        first = asyncio.create_task(orch.call_agent("svc", {"tag": "probe"}))
        await asyncio.sleep(0)
        outcomes = []
        for _ in range(3):
            try:
                await orch.call_agent("svc", {"tag": "other"})
                outcomes.append("ran")
            except CircuitOpen:
                outcomes.append("refused")
        gate.set()
        await first
        outcomes.append(orch.get_agent_metrics("svc")["circuit_breaker"]["state"])
        return outcomes

    assert run(probe()) == ["refused", "refused", "refused", "closed"]
    assert GateAgent.started == ["probe"]


def test_manual_reset_closes_the_breaker(clock: FakeClock) -> None:
    orch = Orchestrator(clock)

    async def scenario() -> None:
        await register(
            orch,
            make(FlakyAgent, "f", clock, failures=1),
            breaker=CircuitBreakerSpec(failure_threshold=1),
        )
        with pytest.raises(RuntimeError):
            await orch.call_agent("f", {})

    run(scenario())
    assert orch._is_circuit_open("f")
    orch._reset_circuit_breaker("f")
    assert not orch.is_circuit_open("f")
    assert run(orch.call_agent("f", {}))["call"] == 2


def test_timeout_raises_step_timeout_and_counts_as_failure(clock: FakeClock) -> None:
    orch = Orchestrator(clock)

    async def scenario() -> None:
        await register(
            orch,
            make(HangAgent, "hang", clock),
            timeout=0.01,
            breaker=CircuitBreakerSpec(failure_threshold=2),
        )
        with pytest.raises(StepTimeout, match=r"^agent 'hang' did not answer within 0.01s$"):
            await orch.call_agent("hang", {})
        with pytest.raises(StepTimeout, match=r"within 0.02s"):
            await orch.call_agent("hang", {}, timeout=0.02)

    run(scenario())
    metrics = orch.get_agent_metrics("hang")
    assert metrics["timeouts"] == 2
    assert metrics["circuit_open"] is True
    assert metrics["replicas"][0]["outstanding"] == 0


def test_an_agents_own_timeout_error_is_not_ours(clock: FakeClock) -> None:
    class OwnTimeout(SucceedAgent):
        async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
            raise TimeoutError("upstream API")

    orch = Orchestrator(clock)
    run(register(orch, make(OwnTimeout, "own", clock), timeout=5))
    with pytest.raises(TimeoutError, match=r"^upstream API$"):
        run(orch.call_agent("own", {}))
    assert orch.get_agent_metrics("own")["timeouts"] == 0


def test_a_non_dict_result_is_a_permanent_error(clock: FakeClock) -> None:
    class Bad(SucceedAgent):
        async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
            return ["not", "a", "dict"]  # type: ignore[return-value]

    orch = Orchestrator(clock)
    run(register(orch, make(Bad, "bad", clock)))
    with pytest.raises(devskyy.DevskyyError, match=r"^agent 'bad' returned list, not a dict$"):
        run(orch.call_agent("bad", {}))


def test_concurrent_load_spreads_across_replicas(clock: FakeClock) -> None:
    orch = Orchestrator(clock, max_concurrency=100)
    replicas = [make(GateAgent, "pool", clock) for _ in range(3)]

    async def scenario() -> list[int]:
        for agent in replicas:
            await register(orch, agent)
        GateAgent.gate = asyncio.Event()
        calls = [asyncio.create_task(orch.call_agent("pool", {"tag": str(i)})) for i in range(7)]
        await asyncio.sleep(0)
        loads = [r["outstanding"] for r in orch.get_agent_metrics("pool")["replicas"]]
        GateAgent.gate.set()
        await asyncio.gather(*calls)
        return loads

    assert run(scenario()) == [3, 2, 2]
    assert [a.calls for a in replicas] == [3, 2, 2]
    assert len(orch.instances("pool")) == 3


def test_sequential_calls_rotate_over_idle_replicas(clock: FakeClock) -> None:
    orch = Orchestrator(clock)
    replicas = [make(RecordingAgent, "rec", clock) for _ in range(3)]

    async def scenario() -> None:
        for agent in replicas:
            await register(orch, agent)
        await register(orch, replicas[0])  # the same instance is not added twice
        for _ in range(6):
            await orch.call_agent("rec", {})

    run(scenario())
    assert [id(r) for r in replicas] * 2 == [c[1] for c in CALLS]


def test_priority_queue_runs_critical_first(clock: FakeClock) -> None:
    orch = Orchestrator(clock, max_concurrency=1)

    async def scenario() -> None:
        await register(orch, make(GateAgent, "gate", clock))
        GateAgent.gate = asyncio.Event()
        blocker = asyncio.create_task(orch.execute_task("t", {"tag": "first"}, ["gate"]))
        await asyncio.sleep(0)
        tasks = [
            asyncio.create_task(orch.execute_task("t", {"tag": level.value}, ["gate"], level))
            for level in (
                Priority.LOW,
                Priority.MEDIUM,
                Priority.CRITICAL,
                Priority.LOW,
                Priority.HIGH,
            )
        ]
        for _ in range(5):
            await asyncio.sleep(0)
        assert orch.queue.describe()["waiting"] == 5
        GateAgent.gate.set()
        await asyncio.gather(blocker, *tasks)

    run(scenario())
    assert GateAgent.started == ["first", "critical", "high", "medium", "low", "low"]


def test_concurrency_limit_is_respected(clock: FakeClock) -> None:
    orch = Orchestrator(clock, max_concurrency=2)
    peak = 0

    class Counting(SucceedAgent):
        running = 0

        async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
            nonlocal peak
            Counting.running += 1
            peak = max(peak, Counting.running)
            for _ in range(3):
                await asyncio.sleep(0)
            Counting.running -= 1
            return {}

    async def scenario() -> None:
        await register(orch, make(Counting, "c", clock))
        await asyncio.gather(*(orch.execute_task("t", {}, ["succeed"]) for _ in range(6)))

    run(scenario())
    assert peak == 2
    assert orch.queue.describe() == {
        "max_concurrency": 2,
        "running": 0,
        "waiting": 0,
        "admitted": 6,
    }


def test_execute_task_orders_by_dependency_and_passes_results(clock: FakeClock) -> None:
    orch = Orchestrator(clock)

    async def scenario() -> dict[str, Any]:
        await register(
            orch,
            make(RecordingAgent, "fixer", clock),
            capabilities=["fix"],
            dependencies=["scanner"],
            priority=Priority.HIGH,
        )
        await register(
            orch,
            make(RecordingAgent, "scanner", clock),
            capabilities=["scan"],
            priority=Priority.LOW,
        )
        await register(
            orch,
            make(RecordingAgent, "security", clock),
            capabilities=["audit"],
            priority=Priority.CRITICAL,
        )
        await register(orch, make(RecordingAgent, "unrelated", clock), capabilities=["other"])
        return await orch.execute_task(
            "scan_and_fix", {"target_path": "./src"}, ["fix", "audit"], ExecutionPriority.HIGH
        )

    result = run(scenario())
    assert result["status"] == "completed"
    assert result["error"] is None
    # The scanner is pulled in as the fixer's dependency; security (critical) goes first.
    assert result["agents"] == ["security", "scanner", "fixer"]
    assert [c[0] for c in CALLS] == ["security", "scanner", "fixer"]
    # Agents without an input model take every parameter, and no upstream output.
    assert [c[2] for c in CALLS] == [{"target_path": "./src"}] * 3
    assert result["attempts"] == {"security": 1, "scanner": 1, "fixer": 1}
    assert result["errors"] == {}
    assert result["priority"] == "high"
    # A task is a workflow run: durable, listed with the runs.
    listed = orch.workflows.store.list_runs()
    assert [(r.id, r.workflow, r.status.value) for r in listed] == [
        (result["run_id"], "task:scan_and_fix", "succeeded")
    ]


def test_execute_task_retries_with_exact_delays(clock: FakeClock) -> None:
    orch = Orchestrator(clock, random_source=lambda: 0.5)
    retry = RetrySpec(
        max_attempts=4,
        initial_interval_seconds=2,
        backoff_coefficient=3,
        maximum_interval_seconds=10,
    )

    async def scenario() -> dict[str, Any]:
        await register(
            orch,
            make(FlakyAgent, "flaky", clock, failures=3),
            retry=retry,
            breaker=CircuitBreakerSpec(failure_threshold=10),
        )
        return await orch.execute_task("t", {}, ["flaky"])

    result = run(scenario())
    assert result["status"] == "completed"
    assert result["attempts"] == {"flaky": 4}
    assert clock.sleeps == [2.0, 6.0, 10.0]


def test_execute_task_gives_up_and_skips_dependents(clock: FakeClock) -> None:
    orch = Orchestrator(clock, random_source=lambda: 0.5)

    async def scenario() -> dict[str, Any]:
        await register(
            orch,
            make(FlakyAgent, "scanner", clock, failures=9),
            capabilities=["scan"],
            retry=RetrySpec(max_attempts=2),
        )
        await register(
            orch,
            make(RecordingAgent, "fixer", clock),
            capabilities=["fix"],
            dependencies=["scanner"],
        )
        await register(orch, make(SucceedAgent, "other", clock), capabilities=["x"])
        return await orch.execute_task("scan_and_fix", {}, ["fix", "x"])

    result = run(scenario())
    assert result["status"] == "failed"
    assert result["errors"] == {
        "scanner": "Flaky: scanner failure 2 (attempt 2 of 2 failed)",
        "fixer": "skipped: needs failed: scanner",
    }
    assert result["error"] == (
        "agent 'scanner' failed: Flaky: scanner failure 2 (attempt 2 of 2 failed)"
    )
    assert result["results"] == {"other": {"agent": "other", "call": 1, "label": ""}}
    assert CALLS == []
    assert clock.sleeps == [1.0]


def test_non_retryable_and_permanent_errors_are_not_retried(clock: FakeClock) -> None:
    orch = Orchestrator(clock)

    async def scenario() -> dict[str, Any]:
        await register(
            orch,
            make(RejectingAgent, "rej", clock),
            retry=RetrySpec(max_attempts=5, non_retryable_errors=["ValueError"]),
        )
        await register(orch, make(PermanentAgent, "perm", clock), retry=RetrySpec(max_attempts=5))
        return await orch.execute_task("t", {}, ["reject", "permanent"])

    result = run(scenario())
    assert result["attempts"] == {"rej": 1, "perm": 1}
    assert result["errors"] == {
        "rej": "Rejected: bad input (Rejected matches nonRetryableErrors entry 'ValueError')",
        "perm": "PermanentError: cannot ever work (permanent: not retried)",
    }
    assert clock.sleeps == []


def test_unknown_capability_is_not_found(clock: FakeClock) -> None:
    orch = Orchestrator(clock)
    with pytest.raises(NotFound, match=r"^no registered agent has capability 'fly'$"):
        run(orch.execute_task("t", {}, ["fly"]))


def test_execution_history_is_kept_in_the_store(clock: FakeClock, state_url: str) -> None:
    engine = open_engine(state_url)
    orch = Orchestrator(clock, history=SqlHistoryStore(engine))

    async def scenario() -> None:
        await register(orch, make(SucceedAgent, "ok", clock))
        await orch.execute_task("first", {}, ["succeed"])
        await orch.execute_task("second", {}, ["succeed"], "critical")

    run(scenario())
    again = Orchestrator(clock, history=SqlHistoryStore(engine))
    history = again.execution_history
    assert [(h["task_type"], h["status"], h["priority"]) for h in history] == [
        ("first", "completed", "medium"),
        ("second", "completed", "critical"),
    ]
    assert history[0]["agents"] == ["ok"]
    assert [h["task_type"] for h in again.agent_history("ok", limit=1)] == ["second"]
    assert again.agent_history("nobody") == []
    assert history[1]["results"] == {"ok": {"agent": "ok", "call": 2, "label": ""}}
    engine.dispose()


def test_shared_context_expires_by_the_clock(clock: FakeClock) -> None:
    orch = Orchestrator(clock)
    orch.share_data(key="cache_key", value={"files": 3}, ttl=300)
    orch.share_data("forever", 1)
    clock.advance(299.9)
    assert orch.get_shared_data(key="cache_key") == {"files": 3}
    clock.advance(0.1)
    assert orch.get_shared_data("cache_key") is None
    assert orch.get_shared_data("cache_key", "gone") == "gone"
    assert orch.get_shared_data("forever") == 1
    orch.share_data("short", 1, ttl=1)
    clock.advance(5)
    assert orch.purge_expired() == 1
    with pytest.raises(ValueError, match=r"^ttl must be positive, not 0$"):
        orch.share_data("bad", 1, ttl=0)


def test_health_metrics_and_graph(clock: FakeClock) -> None:
    orch = Orchestrator(clock)

    async def scenario() -> dict[str, Any]:
        await register(
            orch,
            make(SucceedAgent, "scanner", clock),
            capabilities=["scan"],
            priority=Priority.HIGH,
        )
        await register(
            orch,
            make(SucceedAgent, "fixer", clock),
            capabilities=["fix"],
            dependencies=["scanner", "backup"],
        )
        await register(
            orch,
            make(FlakyAgent, "flaky", clock, failures=1),
            breaker=CircuitBreakerSpec(failure_threshold=1),
        )
        with pytest.raises(RuntimeError):
            await orch.call_agent("flaky", {})
        return await orch.get_orchestrator_health()

    health = run(scenario())
    assert health["status"] == "degraded"
    assert health["total_agents"] == 3
    assert health["healthy_agents"] == 3
    assert health["open_circuits"] == ["flaky"]
    assert health["agents"]["scanner"] == {
        "status": "healthy",
        "replicas": 1,
        "live_replicas": 1,
        "circuit_breaker": "closed",
    }
    assert set(health) == {
        "status",
        "total_agents",
        "healthy_agents",
        "open_circuits",
        "agents",
        "queue",
        "shared_context_keys",
        "tasks",
        "uptime_seconds",
    }
    metrics = orch.get_agent_metrics()
    assert sorted(metrics) == ["fixer", "flaky", "scanner"]
    assert metrics["flaky"]["total_errors"] == 1
    assert metrics["flaky"]["average_response_time"] == 0.0
    graph = orch.get_dependency_graph()
    assert graph["edges"] == [["backup", "fixer"], ["scanner", "fixer"]]
    assert graph["execution_order"] == ["scanner", "fixer", "flaky"]
    assert graph["missing"] == {"fixer": ["backup"]}
    assert graph["nodes"]["scanner"]["dependents"] == ["fixer"]


def test_replace_and_unregister(clock: FakeClock) -> None:
    orch = Orchestrator(clock)
    old = make(SucceedAgent, "a", clock)
    new = make(SucceedAgent, "a", clock, label="new")
    run(register(orch, old))
    run(new.initialize())
    assert orch.replace_replicas("a", [new]) == [old]
    assert run(orch.call_agent("a", {}))["label"] == "new"
    assert orch.unregister_agent("a") == [new]
    assert orch.agent_names == []
    assert FakeConfig(label="new") == new.config


def test_errors_that_answer_the_request_do_not_open_the_breaker(clock: FakeClock) -> None:
    # A declined card is a correct answer from a healthy agent: five of them must not lock
    # every other caller out. Unexpected errors and broken results do count.
    orch = Orchestrator(clock)
    spec = CircuitBreakerSpec(failure_threshold=2)
    retry = RetrySpec(non_retryable_errors=["ValueError"])

    class Bad(SucceedAgent):
        async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
            return None  # type: ignore[return-value]

    async def scenario() -> None:
        await register(orch, make(PermanentAgent, "perm", clock), breaker=spec)
        await register(orch, make(RejectingAgent, "rej", clock), breaker=spec, retry=retry)
        await register(orch, make(Bad, "bad", clock), breaker=spec)
        for _ in range(5):
            with pytest.raises(devskyy.DevskyyError):
                await orch.call_agent("perm", {})
            with pytest.raises(ValueError, match="bad input"):
                await orch.call_agent("rej", {})
        for _ in range(2):
            with pytest.raises(devskyy.DevskyyError, match="not a dict"):
                await orch.call_agent("bad", {})

    run(scenario())
    assert not orch.is_circuit_open("perm")
    assert not orch.is_circuit_open("rej")
    assert orch.is_circuit_open("bad")
    assert orch.get_agent_metrics("perm")["total_errors"] == 5
    assert orch.get_agent_metrics("rej")["circuit_breaker"]["consecutive_failures"] == 0


def test_exhausted_self_healing_counts_against_the_agent(clock: FakeClock) -> None:
    class Healing(FlakyAgent):
        @ScriptedAgent.with_healing
        async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
            return await super().execute_core_function(**kwargs)

    orch = Orchestrator(clock)
    agent = Healing()
    agent.bind(
        AgentContext(
            name="heal", config={"failures": 100}, clock=clock, retry=RetrySpec(max_attempts=2)
        )
    )

    async def scenario() -> None:
        await register(orch, agent, breaker=CircuitBreakerSpec(failure_threshold=1))
        with pytest.raises(devskyy.DevskyyError, match="gave up after 2 attempt"):
            await orch.call_agent("heal", {})

    run(scenario())
    assert orch.is_circuit_open("heal")
    assert agent.status.value == "failed"


def test_call_agent_with_a_priority_waits_in_the_priority_queue(clock: FakeClock) -> None:
    # Workflow steps come in through call_agent(priority=...): critical first here too.
    orch = Orchestrator(clock, max_concurrency=1)

    async def scenario() -> None:
        await register(orch, make(GateAgent, "gate", clock))
        GateAgent.gate = asyncio.Event()
        first = asyncio.create_task(
            orch.call_agent("gate", {"tag": "first"}, priority=Priority.LOW)
        )
        await asyncio.sleep(0)
        tasks = [
            asyncio.create_task(orch.call_agent("gate", {"tag": p.value}, priority=p))
            for p in (Priority.LOW, Priority.CRITICAL, Priority.MEDIUM)
        ]
        for _ in range(5):
            await asyncio.sleep(0)
        assert orch.queue.describe()["waiting"] == 3
        GateAgent.gate.set()
        await asyncio.gather(first, *tasks)

    run(scenario())
    assert GateAgent.started == ["first", "critical", "medium", "low"]


class Headlined(SucceedAgent):
    def headline(self, result: dict[str, Any]) -> str | None:
        if result["label"] == "boom":
            raise KeyError("no such field")
        return f"call {result['call']} of {result['agent']}"


def test_the_agents_headline_is_added_to_each_result(clock: FakeClock) -> None:
    orch = Orchestrator(clock)

    async def scenario() -> list[dict[str, Any]]:
        await register(orch, make(Headlined, "h", clock))
        await register(orch, make(Headlined, "broken", clock, label="boom"))
        await register(orch, make(SucceedAgent, "plain", clock))
        return [await orch.call_agent(n, {}) for n in ("h", "broken", "plain")]

    with_line, broken, plain = run(scenario())
    assert with_line["headline"] == "call 1 of h"
    # A headline that fails is left out; the call itself still succeeds.
    assert "headline" not in broken
    assert broken["call"] == 1
    assert "headline" not in plain


def test_a_compiled_task_is_reused_until_the_agents_change(clock: FakeClock) -> None:
    orch = Orchestrator(clock)
    request = TaskRequest("t", {"a": 1}, ("record",))

    async def scenario() -> tuple[Any, Any, Any, Any]:
        await register(orch, make(RecordingAgent, "low", clock), capabilities=["record"])
        first = orch.compile_task(request)
        same = orch.compile_task(TaskRequest("t", {"a": 2}, ("record",)))  # values differ
        await register(
            orch,
            make(RecordingAgent, "high", clock),
            capabilities=["record"],
            priority=Priority.HIGH,
        )
        return first, same, orch.compile_task(request), orch.compile_task(request)

    first, same, after, again = run(scenario())
    assert same is first
    assert [s.agent for s in first.spec.steps] == ["low"]
    assert [s.agent for s in after.spec.steps] == ["high"]  # a new agent: compiled again
    assert again is after


def test_a_steps_own_breaker_refuses_before_the_agents_and_is_not_counted_as_its(
    clock: FakeClock,
) -> None:
    """A workflow step's plan is the agent's completed by the step's: the step's breaker
    is asked first, and its refusal is the step's, not a rejection by the agent's breaker."""
    orch = Orchestrator(clock)
    workflow = Workflow.model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "Workflow",
            "metadata": {"name": "wf"},
            "spec": {
                "steps": [
                    {
                        "name": "a",
                        "agent": "f",
                        "retry": {"maxAttempts": 1},
                        "circuitBreaker": {"failureThreshold": 1, "resetTimeoutSeconds": 60},
                    }
                ]
            },
        }
    )
    engine = WorkflowEngine(orch, MemoryRunStore(), clock, {"wf": workflow}.get)

    async def scenario() -> tuple[RunRecord, RunRecord, ScriptedAgent]:
        flaky = make(FlakyAgent, "f", clock, failures=1)
        await register(orch, flaky, breaker=CircuitBreakerSpec(failure_threshold=5))
        first = await engine.run("wf")  # the agent fails: the step's breaker opens
        second = await engine.run("wf")  # refused by the step's breaker: the agent not called
        return first, second, flaky

    first, second, flaky = run(scenario())
    assert (first.step("a").status, first.step("a").error) == (
        StepStatus.FAILED,
        "Flaky: f failure 1",
    )
    assert (second.step("a").status, second.step("a").error) == (
        StepStatus.FAILED,
        "CircuitOpen: step 'a': circuit open; retry after 60.0s",
    )
    assert flaky.calls == 1
    metrics = orch.get_agent_metrics("f")
    assert metrics["rejected_by_breaker"] == 0
    assert metrics["circuit_breaker"]["state"] == "closed"
    assert metrics["circuit_breaker"]["consecutive_failures"] == 1
