"""The workflow engine with a fake clock and a scripted fake caller (no real agents)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.run_store import MemoryRunStore
from devskyy.core.breaker import BreakerState
from devskyy.core.retry import RetryPolicy
from devskyy.errors import (
    NotFound,
    PermanentError,
    StateError,
    StepTimeout,
    TemporaryError,
)
from devskyy.model.manifests import Agent, Priority, Workflow
from devskyy.model.runs import (
    RunPatch,
    RunRecord,
    RunStatus,
    RunWrite,
    StepEvent,
    StepRecord,
    StepStatus,
)
from devskyy.runtime.attempt import BreakerCell, Plan
from devskyy.runtime.step_runner import attempt_note
from devskyy.runtime.workflows import (
    STALE_AFTER,
    ParamsError,
    ProgressListenerError,
    WorkflowEngine,
    effective_status,
    to_guide_shape,
    validate_params,
)

S = StepStatus
Action = Callable[["FakeCaller", dict[str, Any], float | None], Awaitable[dict[str, Any]]]


def ok(output: dict[str, Any] | None = None) -> Action:
    async def act(caller: FakeCaller, kwargs: dict[str, Any], timeout: float | None) -> Any:
        return output if output is not None else {"echo": kwargs}

    return act


def fail(exc: Exception) -> Action:
    async def act(caller: FakeCaller, kwargs: dict[str, Any], timeout: float | None) -> Any:
        raise exc

    return act


def take(seconds: float, output: dict[str, Any] | None = None) -> Action:
    """Succeed after ``seconds`` of (fake) time, or time out if the timeout is shorter."""

    async def act(caller: FakeCaller, kwargs: dict[str, Any], timeout: float | None) -> Any:
        if timeout is not None and seconds > timeout:
            caller.clock.advance(timeout)
            raise StepTimeout(f"no answer within {timeout:g}s")
        caller.clock.advance(seconds)
        return output or {"took": seconds}

    return act


def hang() -> Action:
    return take(float("inf"))


def returns(value: Any) -> Action:
    async def act(caller: FakeCaller, kwargs: dict[str, Any], timeout: float | None) -> Any:
        return value

    return act


class FakeCaller:
    """Scripted agents: each call pops the agent's next action (the last one repeats)."""

    def __init__(self, clock: FakeClock, **scripts: list[Action]) -> None:
        self.clock = clock
        self.scripts = scripts
        self.calls: list[tuple[str, dict[str, Any], float | None]] = []
        self.capabilities = {"scanning": "scanner"}
        self.in_flight = 0
        self.max_in_flight = 0
        self.before_call: Callable[[str], None] | None = None
        self.yields = 3
        self.priorities: list[Priority | None] = []

    def resolve(self, capability: str) -> str:
        if capability not in self.capabilities:
            raise NotFound(f'no agent provides capability "{capability}"')
        return self.capabilities[capability]

    @property
    def runner(self) -> FakeCaller:
        return self  # its own step runner: run_attempt below

    def ready(self, name: str) -> asyncio.Event | None:
        del name
        return None  # every scripted agent is there from the start

    def generation(self) -> int:
        return 0  # the scripted agents never change

    def plan(
        self,
        name: str,
        *,
        timeout: float | None = None,
        priority: Priority | None = None,
        retry: RetryPolicy | None = None,
        breakers: tuple[BreakerCell, ...] = (),
        **hooks: Any,
    ) -> Plan:
        # No timeout of its own here: the scripted actions play timeouts on the fake clock
        # from the limit the engine notes for the attempt (``attempt_note().timeout``).
        return Plan(
            f"agent {name!r}",
            retry or RetryPolicy(),
            None,
            breakers,
            priority=priority or Priority.MEDIUM,
            **hooks,
        )

    async def run_attempt(self, name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        note = attempt_note()
        assert note is not None  # the engine notes every attempt
        timeout = note.timeout
        self.priorities.append(note.priority)
        if self.before_call:
            self.before_call(name)
        self.calls.append((name, kwargs, timeout))
        script = self.scripts.get(name, [ok()])
        action = script.pop(0) if len(script) > 1 else script[0]
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            for _ in range(self.yields):  # let other steps start: parallelism shows
                await asyncio.sleep(0)
            return await action(self, kwargs, timeout)
        finally:
            self.in_flight -= 1

    def called(self, name: str) -> int:
        return sum(1 for call in self.calls if call[0] == name)


def workflow(steps: list[dict[str, Any]], name: str = "wf", **spec: Any) -> Workflow:
    return Workflow.model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "Workflow",
            "metadata": {"name": name},
            "spec": {"steps": steps, **spec},
        }
    )


def agent(name: str, **spec: Any) -> Agent:
    return Agent.model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "Agent",
            "metadata": {"name": name},
            "spec": {"module": "fake_agents:SucceedAgent", **spec},
        }
    )


NO_RETRY: dict[str, Any] = {"maxAttempts": 1}


def engine_for(
    caller: FakeCaller,
    *workflows: Workflow,
    agents: tuple[Agent, ...] = (),
    store: MemoryRunStore | None = None,
    owner: str = "test-host:1",
    commit_interval: float = 0.0,
    heartbeat_interval: float = 30.0,
    first_id: int = 1,
) -> tuple[WorkflowEngine, MemoryRunStore]:
    store = store or MemoryRunStore()
    by_name = {w.name: w for w in workflows}
    agent_map = {a.name: a for a in agents}
    ids = iter(f"run{i}" for i in range(first_id, first_id + 100))
    engine = WorkflowEngine(
        caller,
        store,
        caller.clock,
        by_name.get,
        agents=agent_map.get,
        random_value=lambda: 0.5,
        owner=owner,
        id_factory=lambda: next(ids),
        commit_interval=commit_interval,
        heartbeat_interval=heartbeat_interval,
    )
    return engine, store


def run(engine: WorkflowEngine, name: str, **params: Any) -> RunRecord:
    return asyncio.run(engine.run(name, params))


def statuses(record: RunRecord) -> dict[str, str]:
    return {s.name: s.status.value for s in record.steps}


# -- data passing and parallelism --------------------------------------------------------


def test_outputs_flow_to_dependents_and_everything_is_recorded(clock: FakeClock) -> None:
    wf = workflow(
        [
            {"name": "scan", "agent": "scanner", "input": {"path": "${{ params.target }}"}},
            {
                "name": "fix",
                "agent": "fixer",
                "needs": ["scan"],
                "input": {
                    "files": "${{ steps.scan.output.files }}",
                    "note": "fixing ${{ steps.scan.output.count }} in ${{ params.target }}",
                    "mode": "auto",
                },
            },
        ],
        params={"target": {"type": "string", "required": True}},
    )
    caller = FakeCaller(
        clock,
        scanner=[take(2.0, {"files": ["a.py", "b.py"], "count": 2})],
        fixer=[take(1.5, {"fixed": 2})],
    )
    engine, store = engine_for(caller, wf)
    record = run(engine, "wf", target="./src")

    assert caller.calls == [
        ("scanner", {"path": "./src"}, 300.0),
        ("fixer", {"files": ["a.py", "b.py"], "note": "fixing 2 in ./src", "mode": "auto"}, 300.0),
    ]
    assert record.status is RunStatus.SUCCEEDED
    assert record.error is None
    assert record.params == {"target": "./src"}
    scan, fix = record.steps
    assert (scan.status, scan.attempts, scan.duration, scan.output) == (
        S.SUCCEEDED,
        1,
        2.0,
        {"files": ["a.py", "b.py"], "count": 2},
    )
    assert (fix.status, fix.attempts, fix.duration, fix.output) == (
        S.SUCCEEDED,
        1,
        1.5,
        {"fixed": 2},
    )
    assert record.duration == 3.5
    assert store.get("run1") == record
    assert [(e.step, e.status, e.attempt) for e in store.events("run1")] == [
        ("scan", S.RUNNING, 1),
        ("scan", S.SUCCEEDED, 1),
        ("fix", S.RUNNING, 1),
        ("fix", S.SUCCEEDED, 1),
    ]
    assert to_guide_shape(record) == {
        "status": "completed",
        "scan": {"files": ["a.py", "b.py"], "count": 2},
        "fix": {"fixed": 2},
        "errors": [],
        "run_id": "run1",
    }


def test_independent_steps_run_in_parallel(clock: FakeClock) -> None:
    wf = workflow(
        [
            {"name": "a", "agent": "x"},
            {"name": "b", "agent": "y"},
            {"name": "c", "agent": "z", "needs": ["a", "b"]},
        ]
    )
    caller = FakeCaller(clock)
    engine, _ = engine_for(caller, wf)
    record = run(engine, "wf")
    assert caller.max_in_flight == 2
    assert [c[0] for c in caller.calls] == ["x", "y", "z"]
    assert statuses(record) == {"a": "succeeded", "b": "succeeded", "c": "succeeded"}


def test_a_result_is_durable_before_its_dependents_start(clock: FakeClock) -> None:
    wf = workflow([{"name": "a", "agent": "x"}, {"name": "b", "agent": "y", "needs": ["a"]}])
    caller = FakeCaller(clock)
    engine, store = engine_for(caller, wf)
    seen: list[str] = []
    caller.before_call = lambda name: seen.append(
        store.get("run1").step("a").status.value if name == "y" else "-"
    )
    run(engine, "wf")
    assert seen == ["-", "succeeded"]


def test_fast_steps_share_a_commit_within_the_window_slow_ones_do_not(clock: FakeClock) -> None:
    wf = workflow([{"name": "a", "agent": "x"}, {"name": "b", "agent": "y", "needs": ["a"]}])
    for took, seen_by_b in ((0.0, "running"), (0.002, "succeeded")):
        caller = FakeCaller(clock, x=[take(took)])
        engine, store = engine_for(caller, wf, commit_interval=0.002)
        seen: list[str] = []
        caller.before_call = lambda name, store=store, seen=seen: seen.append(
            store.get("run1").step("a").status.value if name == "y" else "-"
        )
        record = run(engine, "wf")
        assert seen == ["-", seen_by_b]
        # Either way everything is committed by the end.
        assert store.get("run1") == record


def test_a_run_finished_within_one_commit_window_keeps_its_start(clock: FakeClock) -> None:
    wf = workflow([{"name": "a", "agent": "x"}, {"name": "b", "agent": "y", "needs": ["a"]}])
    caller = FakeCaller(clock)
    caller.yields = 0  # every call answers at once: the loop never idles, one commit at the end
    engine, store = engine_for(caller, wf, commit_interval=10.0)
    record = run(engine, "wf")
    assert record.started_at == clock.now()
    assert store.get("run1") == record
    # Both attempts started and ended within the one commit: one event row each.
    assert store.events("run1") == [
        StepEvent("a", S.SUCCEEDED, 1, clock.now(), started_at=clock.now()),
        StepEvent("b", S.SUCCEEDED, 1, clock.now(), started_at=clock.now()),
    ]


def test_a_run_waiting_on_a_long_step_writes_heartbeats(clock: FakeClock) -> None:
    wf = workflow([{"name": "a", "agent": "x"}])

    async def scenario() -> tuple[list[float], RunRecord]:
        gate = asyncio.Event()

        async def blocked(caller: FakeCaller, kwargs: dict[str, Any], timeout: Any) -> Any:
            await gate.wait()
            return {"ok": True}

        caller = FakeCaller(clock, x=[blocked])
        engine, store = engine_for(caller, wf, heartbeat_interval=0.001)
        task = asyncio.create_task(engine.run("wf", {}))
        beats: list[float] = []
        while len(beats) < 2:  # yield until the engine's idle wait times out twice
            await asyncio.sleep(0)
            runs = store.list_runs()
            beat = runs[0].heartbeat_at if runs else None
            if beat is not None and (not beats or beat > beats[-1]):
                beats.append(beat)
                clock.advance(7)
        assert store.get("run1").status is RunStatus.RUNNING
        gate.set()
        return beats, await task

    beats, record = asyncio.run(scenario())
    start = 1_700_000_000.0
    assert beats == [start, start + 7]
    assert record.status is RunStatus.SUCCEEDED


def test_capability_steps_call_the_resolved_agent(clock: FakeClock) -> None:
    wf = workflow([{"name": "scan", "capability": "scanning"}])
    caller = FakeCaller(clock)
    engine, _ = engine_for(caller, wf)
    assert run(engine, "wf").status is RunStatus.SUCCEEDED
    assert caller.calls[0][0] == "scanner"


def test_an_unresolvable_capability_fails_the_step(clock: FakeClock) -> None:
    wf = workflow([{"name": "scan", "capability": "nothing"}])
    engine, _ = engine_for(FakeCaller(clock), wf)
    record = run(engine, "wf")
    assert record.step("scan").error == 'NotFound: no agent provides capability "nothing"'
    assert record.step("scan").attempts == 0


# -- missing input, params ---------------------------------------------------------------


def test_missing_input_fails_loudly_without_calling_the_agent(clock: FakeClock) -> None:
    wf = workflow(
        [
            {"name": "scan", "agent": "scanner"},
            {
                "name": "fix",
                "agent": "fixer",
                "needs": ["scan"],
                "input": {"files": "${{ steps.scan.output.files }}"},
            },
        ]
    )
    caller = FakeCaller(clock, scanner=[ok({"count": 0})])
    engine, _ = engine_for(caller, wf)
    record = run(engine, "wf")
    assert caller.called("fixer") == 0
    fix = record.step("fix")
    assert fix.status is S.FAILED
    assert fix.attempts == 0
    assert fix.error_type == "MissingInput"
    message = "step 'fix': input 'files': ${{ steps.scan.output.files }} evaluated to nothing"
    assert fix.error == f"MissingInput: {message}"
    assert record.status is RunStatus.FAILED
    assert record.error == "step(s) failed: fix"
    assert to_guide_shape(record)["status"] == "failed"
    assert to_guide_shape(record)["errors"] == [f"fix: MissingInput: {message}"]


def test_params_are_validated_with_defaults_and_clear_errors() -> None:
    wf = workflow(
        [{"name": "a", "agent": "x"}],
        params={
            "target": {"type": "string", "required": True},
            "limit": {"type": "integer", "default": 10},
            "ratio": {"type": "number"},
            "deep": {"type": "boolean", "default": False},
            "tags": {"type": "array"},
        },
    )
    assert validate_params(wf, {"target": "."}) == {"target": ".", "limit": 10, "deep": False}
    assert validate_params(wf, {"target": ".", "ratio": 2, "tags": ["x"]})["ratio"] == 2
    with pytest.raises(ParamsError) as info:
        validate_params(wf, {"limit": "3", "ratio": True, "bogus": 1})
    assert str(info.value) == (
        'workflow "wf": unknown parameter "bogus" (declared: deep, limit, ratio, tags, target); '
        'missing required parameter "target" (string); '
        'parameter "limit" must be an integer, not string ("3"); '
        'parameter "ratio" must be a number, not boolean (true)'
    )


def test_unknown_param_and_unknown_workflow_fail_before_a_run_exists(clock: FakeClock) -> None:
    engine, store = engine_for(FakeCaller(clock), workflow([{"name": "a", "agent": "x"}]))
    with pytest.raises(ParamsError, match=r'unknown parameter "x" \(declared: none\)'):
        run(engine, "wf", x=1)
    with pytest.raises(NotFound) as info:
        run(engine, "nope")
    assert str(info.value) == 'workflow "nope" is not applied (run devskyy apply first)'
    assert store.list_runs() == []


def test_when_false_skips_and_the_skip_propagates(clock: FakeClock) -> None:
    wf = workflow(
        [
            {"name": "a", "agent": "x", "when": "params.enabled"},
            {"name": "b", "agent": "y", "needs": ["a"]},
            {"name": "c", "agent": "z", "when": "${{ params.enabled == `false` }}"},
        ],
        params={"enabled": {"type": "boolean", "default": False}},
    )
    caller = FakeCaller(clock)
    engine, _ = engine_for(caller, wf)
    record = run(engine, "wf")
    assert statuses(record) == {"a": "skipped", "b": "skipped", "c": "succeeded"}
    assert record.step("a").reason == "when is false: params.enabled"
    assert record.step("b").reason == "needs skipped: a"
    assert record.status is RunStatus.SUCCEEDED
    assert [c[0] for c in caller.calls] == ["z"]
    assert to_guide_shape(record)["a"] is None


# -- retries -----------------------------------------------------------------------------

RETRY: dict[str, Any] = {"maxAttempts": 3, "initialIntervalSeconds": 1, "backoffCoefficient": 2}


def test_fail_twice_then_succeed_retries_with_exact_delays(clock: FakeClock) -> None:
    wf = workflow([{"name": "a", "agent": "x", "retry": RETRY}])
    caller = FakeCaller(
        clock, x=[fail(TemporaryError("one")), fail(TemporaryError("two")), ok({"n": 3})]
    )
    engine, store = engine_for(caller, wf)
    record = run(engine, "wf")
    assert clock.sleeps == [1.0, 2.0]
    assert caller.called("x") == 3
    a = record.step("a")
    assert (a.status, a.attempts, a.output, a.error) == (S.SUCCEEDED, 3, {"n": 3}, None)
    assert a.duration == 3.0
    start = 1_700_000_000.0
    assert store.events("run1") == [
        StepEvent("a", S.RUNNING, 1, start),
        StepEvent("a", S.RETRY_WAIT, 1, start, "TemporaryError: one", start + 1, start),
        StepEvent("a", S.RUNNING, 2, start + 1),
        StepEvent("a", S.RETRY_WAIT, 2, start + 1, "TemporaryError: two", start + 3, start + 1),
        StepEvent("a", S.RUNNING, 3, start + 3),
        StepEvent("a", S.SUCCEEDED, 3, start + 3, started_at=start + 3),
    ]


def test_retries_exhausted_fail_the_step_after_max_attempts(clock: FakeClock) -> None:
    wf = workflow([{"name": "a", "agent": "x", "retry": {**RETRY, "maxAttempts": 4}}])
    caller = FakeCaller(clock, x=[fail(RuntimeError("down"))])
    engine, _ = engine_for(caller, wf)
    record = run(engine, "wf")
    assert caller.called("x") == 4
    assert clock.sleeps == [1.0, 2.0, 4.0]
    a = record.step("a")
    assert (a.status, a.attempts, a.error, a.error_type) == (
        S.FAILED,
        4,
        "RuntimeError: down",
        "RuntimeError",
    )
    assert a.reason == "attempt 4 of 4 failed"


def test_non_retryable_errors_are_not_retried(clock: FakeClock) -> None:
    class Rejected(ValueError):
        pass

    wf = workflow(
        [
            {"name": "a", "agent": "x", "retry": {**RETRY, "nonRetryableErrors": ["ValueError"]}},
            {"name": "b", "agent": "y", "retry": RETRY},
        ],
        failFast=False,
    )
    caller = FakeCaller(clock, x=[fail(Rejected("bad"))], y=[fail(PermanentError("never"))])
    engine, _ = engine_for(caller, wf)
    record = run(engine, "wf")
    assert (caller.called("x"), caller.called("y")) == (1, 1)
    assert clock.sleeps == []
    assert record.step("a").attempts == 1
    assert record.step("a").reason == "Rejected matches nonRetryableErrors entry 'ValueError'"
    assert record.step("b").error == "PermanentError: never"
    assert record.step("b").reason == "permanent: not retried"


def test_the_agent_manifest_retry_applies_when_the_step_has_none(clock: FakeClock) -> None:
    wf = workflow([{"name": "a", "agent": "x"}, {"name": "b", "agent": "y"}], failFast=False)
    caller = FakeCaller(clock, x=[fail(TemporaryError("t"))], y=[fail(TemporaryError("t"))])
    engine, _ = engine_for(
        caller,
        wf,
        agents=(agent("x", retry={"maxAttempts": 2, "initialIntervalSeconds": 5}),),
    )
    record = run(engine, "wf")
    assert record.step("a").attempts == 2
    # y has no manifest: the default policy (3 attempts, 1 s then 2 s).
    assert record.step("b").attempts == 3
    assert sorted(clock.sleeps) == [1.0, 2.0, 5.0]


# -- timeouts ----------------------------------------------------------------------------


def test_step_timeout_is_passed_to_the_call_and_retried(clock: FakeClock) -> None:
    wf = workflow(
        [
            {"name": "a", "agent": "x", "timeoutSeconds": 5, "retry": {"maxAttempts": 2}},
            {"name": "b", "agent": "y", "retry": NO_RETRY},
        ],
        failFast=False,
    )
    caller = FakeCaller(clock, x=[hang(), take(1.0)], y=[hang()])
    engine, _ = engine_for(caller, wf, agents=(agent("y", timeoutSeconds=7),))
    record = run(engine, "wf")
    assert [(c[0], c[2]) for c in caller.calls] == [("x", 5.0), ("y", 7.0), ("x", 5.0)]
    assert record.step("a").status is S.SUCCEEDED
    assert record.step("a").attempts == 2
    assert record.step("b").error == "StepTimeout: no answer within 7s"


def test_workflow_timeout_bounds_calls_and_stops_new_steps(clock: FakeClock) -> None:
    wf = workflow(
        [
            {"name": "a", "agent": "x"},
            {"name": "b", "agent": "y", "needs": ["a"]},
            {"name": "c", "agent": "z", "needs": ["b"], "trigger": "always"},
        ],
        timeoutSeconds=10,
    )
    caller = FakeCaller(clock, x=[take(6.0)], y=[take(6.0)])
    engine, _ = engine_for(caller, wf)
    record = run(engine, "wf")
    # b was given only what was left of the workflow's 10 s, and was not retried.
    assert [(c[0], c[2]) for c in caller.calls] == [("x", 10.0), ("y", 4.0)]
    assert record.step("b").reason == "the workflow timeout leaves no time to retry"
    assert statuses(record) == {"a": "succeeded", "b": "failed", "c": "skipped"}
    assert record.step("c").reason == "workflow timed out"
    assert record.status is RunStatus.FAILED
    assert record.error == "workflow timed out after 10s"


# -- failFast, continue, compensation, cleanup -------------------------------------------


def test_fail_fast_stops_launching_but_continue_runs_independent_branches(
    clock: FakeClock,
) -> None:
    steps: list[dict[str, Any]] = [
        {"name": "bad", "agent": "x", "retry": NO_RETRY},
        {"name": "slow", "agent": "y"},
        {"name": "after", "agent": "z", "needs": ["slow"]},
    ]
    for fail_fast, after in ((True, "skipped"), (False, "succeeded")):
        caller = FakeCaller(clock, x=[fail(RuntimeError("boom"))], y=[take(1.0)])
        engine, _ = engine_for(caller, workflow(steps, failFast=fail_fast))
        record = run(engine, "wf")
        assert statuses(record) == {"bad": "failed", "slow": "succeeded", "after": after}
        assert record.status is RunStatus.FAILED
        assert caller.called("z") == (0 if fail_fast else 1)
    assert record.step("bad").error == "RuntimeError: boom"


def test_compensation_runs_only_when_payment_fails_and_cleanup_always(clock: FakeClock) -> None:
    steps: list[dict[str, Any]] = [
        {"name": "reserve", "agent": "inventory", "input": {"sku": "A1"}},
        {"name": "pay", "agent": "payments", "needs": ["reserve"], "retry": NO_RETRY},
        {
            "name": "release",
            "agent": "inventory",
            "needs": ["pay"],
            "trigger": "any_failed",
            "input": {"reservation": "${{ steps.reserve.output.id }}"},
        },
        {"name": "notify", "agent": "mailer", "needs": ["pay", "release"], "trigger": "always"},
    ]
    caller = FakeCaller(
        clock,
        inventory=[ok({"id": "R-7"}), ok({"released": True})],
        payments=[fail(RuntimeError("card declined"))],
    )
    engine, _ = engine_for(caller, workflow(steps))
    record = run(engine, "wf")
    assert statuses(record) == {
        "reserve": "succeeded",
        "pay": "failed",
        "release": "succeeded",
        "notify": "succeeded",
    }
    assert caller.calls[2] == ("inventory", {"reservation": "R-7"}, 300.0)
    assert record.status is RunStatus.FAILED

    happy = FakeCaller(clock, inventory=[ok({"id": "R-8"})], payments=[ok({"paid": True})])
    engine, _ = engine_for(happy, workflow(steps))
    record = run(engine, "wf")
    assert statuses(record) == {
        "reserve": "succeeded",
        "pay": "succeeded",
        "release": "skipped",
        "notify": "succeeded",
    }
    assert record.status is RunStatus.SUCCEEDED


# -- step breaker, seam checks -----------------------------------------------------------


def test_step_breaker_opens_after_threshold_and_probes_after_reset(clock: FakeClock) -> None:
    steps = [
        {
            "name": "a",
            "agent": "x",
            "retry": {"maxAttempts": 5, "initialIntervalSeconds": 1, "backoffCoefficient": 2},
            "circuitBreaker": {"failureThreshold": 2, "resetTimeoutSeconds": 30},
        }
    ]
    caller = FakeCaller(clock, x=[fail(TemporaryError("down")), fail(TemporaryError("down"))])
    engine, _ = engine_for(caller, workflow(steps))
    record = run(engine, "wf")
    # Attempts at t=0 and t=1 reach the agent; at t=3, 7 and 15 the open breaker refuses.
    assert caller.called("x") == 2
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]
    a = record.step("a")
    assert (a.attempts, a.error_type) == (5, "CircuitOpen")
    assert a.error == "CircuitOpen: step 'a': circuit open; retry after 16.0s"
    breaker = engine.breaker("wf", "a")
    assert breaker is not None
    assert breaker.state is BreakerState.OPEN

    clock.advance(30)
    caller.scripts["x"] = [ok({"back": True})]
    second = asyncio.run(engine.run("wf", {}))
    assert second.status is RunStatus.SUCCEEDED
    assert caller.called("x") == 3
    assert engine.breaker("wf", "a").state is BreakerState.CLOSED  # type: ignore[union-attr]


def test_outputs_must_be_json_dicts(clock: FakeClock) -> None:
    wf = workflow([{"name": "a", "agent": "x"}, {"name": "b", "agent": "y"}], failFast=False)
    caller = FakeCaller(clock, x=[returns({"when": object()})], y=[returns(["not", "a", "dict"])])
    engine, _ = engine_for(caller, wf)
    record = run(engine, "wf")
    assert caller.called("x") == 1  # NotSerializable is permanent: no retry
    assert record.step("a").error_type == "NotSerializable"
    assert record.step("a").error.startswith(  # type: ignore[union-attr]
        "NotSerializable: step 'a': output of agent 'x' is not JSON: "
    )
    assert (
        record.step("b").error == "NotSerializable: step 'b': agent 'y' returned list, not a dict"
    )


# -- resume ------------------------------------------------------------------------------


def test_resume_finishes_an_interrupted_run_without_rerunning_successes(
    clock: FakeClock,
) -> None:
    wf = workflow(
        [
            {"name": "a", "agent": "x"},
            {"name": "b", "agent": "y", "needs": ["a"], "input": {"v": "${{ steps.a.output.v }}"}},
            {"name": "c", "agent": "z", "needs": ["b"]},
        ]
    )
    store = MemoryRunStore()
    crashed, _ = engine_for(FakeCaller(clock), wf, store=store, owner="gone.example:4242")
    record = crashed.create("wf", {})
    now = clock.now()
    store.write(
        RunWrite(
            record.id,
            steps=(
                StepRecord("a", S.SUCCEEDED, 1, now, now, 0.0, {"v": 41}),
                StepRecord("b", S.RUNNING, 1, now),
            ),
            events=(
                StepEvent("a", S.RUNNING, 1, now),
                StepEvent("a", S.SUCCEEDED, 1, now),
                StepEvent("b", S.RUNNING, 1, now),
            ),
        )
    )
    store.write(RunWrite(record.id, patch=RunPatch(status=RunStatus.RUNNING, heartbeat_at=now)))
    # The owner is on another host: a fresh heartbeat means it is still running.
    assert effective_status(store.get(record.id), now) is RunStatus.RUNNING
    engine, _ = engine_for(FakeCaller(clock), wf, store=store, owner="here:1")
    with pytest.raises(StateError, match='run "run1" is still running'):
        asyncio.run(engine.resume(record.id))

    clock.advance(600)
    assert effective_status(store.get(record.id), clock.now()) is RunStatus.INTERRUPTED
    caller = FakeCaller(clock)
    engine, _ = engine_for(caller, wf, store=store, owner="here:1")
    done = asyncio.run(engine.resume(record.id))
    assert [c[0] for c in caller.calls] == ["y", "z"]
    assert caller.calls[0][1] == {"v": 41}
    assert statuses(done) == {"a": "succeeded", "b": "succeeded", "c": "succeeded"}
    assert (done.step("a").attempts, done.step("b").attempts) == (1, 2)
    assert done.status is RunStatus.SUCCEEDED
    assert store.get(record.id).owner == "here:1"
    with pytest.raises(StateError, match='run "run1" already succeeded; nothing to resume'):
        asyncio.run(engine.resume(record.id))


def test_a_step_cut_by_the_workflow_timeout_fails_the_run_as_timed_out(clock: FakeClock) -> None:
    wf = workflow([{"name": "a", "agent": "x", "timeoutSeconds": 60}], timeoutSeconds=10)
    caller = FakeCaller(clock, x=[take(20.0)])
    engine, _ = engine_for(caller, wf)
    record = run(engine, "wf")
    assert caller.calls == [("x", {}, 10.0)]
    assert record.step("a").attempts == 1
    assert record.error == "workflow timed out after 10s"
    assert to_guide_shape(record)["errors"] == [
        "a: StepTimeout: no answer within 10s",
        "workflow timed out after 10s",
    ]


def test_effective_status_of_dead_pending_and_finished_runs() -> None:
    here_dead = f"{socket.gethostname()}:999999999"
    alive = f"{socket.gethostname()}:{os.getpid()}"
    base = RunRecord(id="r", workflow="wf", created_at=0.0, heartbeat_at=0.0)
    assert effective_status(base.with_status(RunStatus.PENDING), 1.0) is RunStatus.PENDING
    dead_pending = RunRecord(id="r", workflow="wf", owner=here_dead)
    assert effective_status(dead_pending, 1.0) is RunStatus.INTERRUPTED
    alive_running = RunRecord(id="r", workflow="wf", owner=alive, status=RunStatus.RUNNING)
    # The owner is this very process: a heartbeat a day old does not matter.
    assert effective_status(alive_running, 86_400.0) is RunStatus.RUNNING
    done = RunRecord(id="r", workflow="wf", owner=here_dead, status=RunStatus.SUCCEEDED)
    assert effective_status(done, 1.0) is RunStatus.SUCCEEDED


def test_a_cancelled_run_is_recorded_and_can_be_resumed(clock: FakeClock) -> None:
    wf = workflow([{"name": "a", "agent": "x"}, {"name": "b", "agent": "y", "needs": ["a"]}])

    async def scenario() -> tuple[RunRecord, RunRecord]:
        gate = asyncio.Event()

        async def blocked(caller: FakeCaller, kwargs: dict[str, Any], timeout: Any) -> Any:
            await gate.wait()
            return {"late": True}

        caller = FakeCaller(clock, y=[blocked, ok({"b": 2})])
        engine, store = engine_for(caller, wf)
        task = asyncio.create_task(engine.run("wf", {}))
        while caller.called("y") == 0:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        cancelled = store.get("run1")
        resumed = await engine.resume("run1")
        assert caller.called("x") == 1
        return cancelled, resumed

    cancelled, resumed = asyncio.run(scenario())
    assert cancelled.status is RunStatus.CANCELLED
    assert statuses(cancelled) == {"a": "succeeded", "b": "pending"}
    assert cancelled.step("b").error == "CancelledError: the run was cancelled during this step"
    assert resumed.status is RunStatus.SUCCEEDED
    assert resumed.step("b").output == {"b": 2}
    assert resumed.step("b").attempts == 2


def test_a_pending_run_resumes_only_when_its_creator_is_gone(clock: FakeClock) -> None:
    wf = workflow([{"name": "a", "agent": "x"}])
    store = MemoryRunStore()
    alive = f"{socket.gethostname()}:{os.getpid()}"
    creator, _ = engine_for(FakeCaller(clock), wf, store=store, owner=alive)
    record = creator.create("wf", {})
    assert record.heartbeat_at == clock.now()
    caller = FakeCaller(clock)
    other, _ = engine_for(caller, wf, store=store, owner="elsewhere:1")
    with pytest.raises(StateError, match=r'run "run1" is still pending \(owner '):
        asyncio.run(other.resume(record.id))
    assert caller.calls == []

    gone, _ = engine_for(FakeCaller(clock), wf, store=store, owner="gone.example:7", first_id=2)
    orphan = gone.create("wf", {})
    clock.advance(STALE_AFTER + 1)
    assert asyncio.run(other.resume(orphan.id)).status is RunStatus.SUCCEEDED
    assert caller.called("x") == 1


# -- admission and capability hand-off ---------------------------------------------------


def test_every_attempt_is_admitted_with_the_workflow_priority(clock: FakeClock) -> None:
    wf = workflow(
        [{"name": "a", "agent": "x"}, {"name": "b", "agent": "x", "needs": ["a"]}],
        priority="critical",
    )
    caller = FakeCaller(clock)
    engine, _ = engine_for(caller, wf)
    assert run(engine, "wf").status.value == "succeeded"
    assert caller.priorities == [Priority.CRITICAL, Priority.CRITICAL]


def test_a_capability_step_tells_a_multi_capability_agent_which_one(clock: FakeClock) -> None:
    wf = workflow(
        [
            {"name": "pay", "capability": "process_payment", "input": {"order": "o1"}},
            {"name": "scan", "capability": "scanning", "input": {"path": "."}},
            {
                "name": "book",
                "capability": "record_transaction",
                "input": {"order": "o1", "capability": "explicit"},
            },
        ]
    )
    caller = FakeCaller(clock)
    caller.capabilities.update(process_payment="financial", record_transaction="financial")
    financial = agent("financial", capabilities=["process_payment", "record_transaction"])
    scanner = agent("scanner", capabilities=["scanning"])
    engine, _ = engine_for(caller, wf, agents=(financial, scanner))
    assert run(engine, "wf").status.value == "succeeded"
    financial_calls = sorted(
        (kwargs for name, kwargs, _ in caller.calls if name == "financial"),
        key=lambda kw: str(kw["capability"]),
    )
    assert financial_calls == [
        {"order": "o1", "capability": "explicit"},
        {"order": "o1", "capability": "process_payment"},
    ]
    # A single-capability agent gets its input untouched.
    assert [kw for name, kw, _ in caller.calls if name == "scanner"] == [{"path": "."}]


def test_a_failing_progress_listener_fails_the_run_with_its_error(clock: FakeClock) -> None:
    wf = workflow([{"name": "a", "agent": "x"}, {"name": "b", "agent": "y", "needs": ["a"]}])
    caller = FakeCaller(clock)
    engine, store = engine_for(caller, wf)
    heard: list[tuple[str, str]] = []

    def listener(run: RunRecord, step: StepRecord) -> None:
        heard.append((step.name, step.status.value))
        if (step.name, step.status) == ("a", S.SUCCEEDED):
            raise ValueError("the display broke")

    with pytest.raises(ProgressListenerError) as caught:
        asyncio.run(engine.run("wf", {}, on_step=listener))
    assert str(caught.value) == "progress listener failed: ValueError: the display broke"
    assert isinstance(caught.value.__cause__, ValueError)
    record = store.get("run1")
    assert record.status is RunStatus.FAILED  # not "cancelled": nothing was cancelled
    assert record.error == (
        "ProgressListenerError: progress listener failed: ValueError: the display broke"
    )
    assert record.finished_at is not None
    assert record.step("a").status is S.SUCCEEDED  # results that arrived are kept
    # The listener is told each change once, in order, and never again after it failed.
    assert heard == [("a", "running"), ("a", "succeeded")]


def test_only_real_cancellation_records_cancelled(clock: FakeClock) -> None:
    wf = workflow([{"name": "a", "agent": "x"}])

    class Broken(MemoryRunStore):
        def write(self, batch: RunWrite) -> None:
            if batch.patch is not None and batch.patch.status is RunStatus.SUCCEEDED:
                raise OSError("disk full")
            super().write(batch)

    caller = FakeCaller(clock)
    engine, store = engine_for(caller, wf, store=Broken())
    with pytest.raises(OSError, match=r"^disk full$"):
        asyncio.run(engine.run("wf", {}))
    record = store.get("run1")
    assert (record.status, record.error) == (RunStatus.FAILED, "OSError: disk full")


def test_a_resumed_run_is_not_finished_until_it_ends(clock: FakeClock) -> None:
    wf = workflow([{"name": "a", "agent": "x"}, {"name": "b", "agent": "y", "needs": ["a"]}])

    async def scenario() -> tuple[RunRecord, list[float | None], RunRecord]:
        gate = asyncio.Event()

        async def blocked(caller: FakeCaller, kwargs: dict[str, Any], timeout: Any) -> Any:
            await gate.wait()
            return {}

        caller = FakeCaller(clock, y=[blocked, ok({"b": 2})])
        engine, store = engine_for(caller, wf)
        task = asyncio.create_task(engine.run("wf", {}))
        while caller.called("y") == 0:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        cancelled = store.get("run1")
        clock.advance(60)
        seen: list[float | None] = []

        def listener(run: RunRecord, step: StepRecord) -> None:
            seen.append(store.get("run1").finished_at)

        resumed = await engine.resume("run1", on_step=listener)
        return cancelled, seen, resumed

    cancelled, seen, resumed = asyncio.run(scenario())
    assert cancelled.finished_at is not None
    assert seen
    assert set(seen) == {None}  # while it runs again the store says it is not finished
    assert resumed.finished_at is not None
    assert resumed.finished_at > cancelled.finished_at
    assert resumed.error is None
