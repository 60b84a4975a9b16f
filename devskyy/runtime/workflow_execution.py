"""One session of driving one workflow run: the engine's inner loop (see ``workflows``).

``RunExecution.drive()`` asks ``DagProgress`` for ready steps, evaluates ``when``, renders
inputs, starts one asyncio task per step, runs each attempt through the ``AgentCaller``
(one call per attempt; retry and breaker decisions are made here), and group-commits
finished steps to the run store before their dependents start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from devskyy.core.breaker import Breaker, BreakerPolicy
from devskyy.core.dag import DagProgress
from devskyy.core.expressions import ExpressionError, render, truthy
from devskyy.core.jsonvalue import json_copy
from devskyy.core.retry import DoSleep, GiveUp, RetryPolicy
from devskyy.errors import (
    CircuitOpen,
    DevskyyError,
    ExecutionError,
    MissingInput,
    PermanentError,
    StepTimeout,
)
from devskyy.model.manifests import Agent, Priority, StepSpec, Workflow
from devskyy.model.runs import (
    RunPatch,
    RunRecord,
    RunStatus,
    RunWrite,
    StepEvent,
    StepRecord,
    StepStatus,
)

if TYPE_CHECKING:
    from devskyy.runtime.workflows import WorkflowEngine

S = StepStatus
STEPS_FAILED = "step(s) failed:"
ProgressListener = Callable[[RunRecord, StepRecord], None]


class AgentCaller(Protocol):
    """What the engine needs from the orchestrator: one attempt, and name resolution."""

    async def call_agent(
        self,
        name: str,
        kwargs: dict[str, Any],
        *,
        timeout: float | None = None,
        priority: Priority | None = None,
    ) -> dict[str, Any]:
        """Run one attempt on agent ``name`` (admitted by ``priority``); StepTimeout /
        CircuitOpen on those failures."""
        ...

    def resolve(self, capability: str) -> str:
        """The agent to call for a capability; ``NotFound`` when none provides it."""
        ...


class NotSerializable(PermanentError):
    """A step's input or output is not a JSON value (the step-runner seam needs JSON)."""


@dataclass
class _Outcome:
    name: str
    output: dict[str, Any] | None = None
    error: BaseException | None = None
    reason: str | None = None


class RunExecution:
    """One session of driving one run (a fresh run, or a resumed one)."""

    def __init__(
        self,
        engine: WorkflowEngine,
        workflow: Workflow,
        record: RunRecord,
        dag: DagProgress,
        on_step: ProgressListener | None,
    ) -> None:
        self.engine = engine
        self.clock = engine.clock
        self.workflow = workflow
        self.run = record
        self.dag = dag
        self.on_step = on_step
        self.specs = {s.name: s for s in workflow.spec.steps}
        self.records = {s.name: s for s in record.steps}
        self.steps_context: dict[str, dict[str, Any]] = {
            s.name: {"output": s.output, "status": s.status.value}
            for s in record.steps
            if s.status.terminal
        }
        self.context = {"params": record.params, "steps": self.steps_context}
        self.dirty: dict[str, StepRecord] = {}
        self.events: list[StepEvent] = []
        self.patch: RunPatch | None = None
        self.completions: list[_Outcome] = []
        self.wakeup = asyncio.Event()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.started_mono: dict[str, float] = {}
        self.attempt_began: dict[str, float] = {}
        self.deadline = self.clock.monotonic() + workflow.spec.timeout_seconds
        self.timed_out = False
        self.flushed_at = self.clock.monotonic()
        self.agent_manifests: dict[str, Agent | None] = {}
        self.not_json: dict[str, str] = {}
        for spec in workflow.spec.steps:
            try:
                json_copy(spec.input)
            except (TypeError, ValueError) as exc:
                self.not_json[spec.name] = str(exc)

    # -- recording -------------------------------------------------------------------------

    def _set(self, record: StepRecord, event: StepEvent | None) -> None:
        self.records[record.name] = record
        self.dirty[record.name] = record
        if event is not None:
            self.events.append(event)
        if self.on_step is not None:
            self.on_step(self.run, record)

    def _patch(self, patch: RunPatch) -> None:
        """Merge run fields into the pending write (a later value wins per field)."""
        self.patch = patch if self.patch is None else replace(self.patch, **_set_fields(patch))

    def flush(self) -> None:
        """Write everything changed since the last flush in one transaction."""
        if not (self.dirty or self.events or self.patch):
            return
        events = self.events
        ended = {(e.step, e.attempt) for e in events if e.status is not S.RUNNING}
        if ended:
            # An attempt that started and ended within one batch is one row: its end
            # event carries started_at (a third fewer rows for fast steps).
            events = [
                e for e in events if e.status is not S.RUNNING or (e.step, e.attempt) not in ended
            ]
        batch = RunWrite(self.run.id, self.patch, tuple(self.dirty.values()), tuple(events))
        self.engine.store.write(batch)
        self.flushed_at = self.clock.monotonic()
        self.dirty = {}
        self.events = []
        self.patch = None

    def _finish_step(
        self, name: str, status: StepStatus, *, output: dict[str, Any] | None = None, **extra: Any
    ) -> None:
        now = self.clock.now()
        began = self.started_mono.pop(name, None)
        duration = None if began is None else self.clock.monotonic() - began
        attempts = self.dag.attempts(name)
        error = extra.get("error")
        reason = extra.get("reason")
        # Built directly, not with dataclasses.replace: this is the per-step hot path.
        record = StepRecord(
            name,
            status,
            attempts,
            self.records[name].started_at,
            now,
            duration,
            output,
            error,
            extra.get("error_type"),
            reason,
        )
        began = self.attempt_began.pop(name, None)
        self._set(record, StepEvent(name, status, attempts, now, error or reason, None, began))
        self.steps_context[name] = {"output": output, "status": status.value}

    # -- driving ---------------------------------------------------------------------------

    async def drive(self) -> RunRecord:
        now = self.clock.now()
        self.run = replace(
            self.run, status=RunStatus.RUNNING, started_at=self.run.started_at or now
        )
        self._patch(
            RunPatch(status=RunStatus.RUNNING, started_at=self.run.started_at, heartbeat_at=now)
        )
        try:
            while True:
                self._launch()
                if self.dag.done:
                    break
                if not self.completions:
                    # Let steps that finish at once do so: their start and end share a commit.
                    await asyncio.sleep(0)
                if not self.completions:
                    self.flush()
                    await self._idle()
                self.wakeup.clear()
                batch, self.completions = self.completions, []
                for outcome in batch:
                    self._record_outcome(outcome)
                # Group commit: results are durable before dependents start, unless steps
                # finish faster than the commit window; then one commit covers the window.
                window = self.engine.commit_interval
                if not window or self.clock.monotonic() - self.flushed_at >= window:
                    self.flush()
                for outcome in batch:
                    self._advance_outcome(outcome)
        except BaseException:
            await self._abandon()
            raise
        return self._close()

    async def _idle(self) -> None:
        """Wait for a step event; write a heartbeat whenever the wait lasts an interval."""
        interval = self.engine.heartbeat_interval
        while True:
            try:
                # asyncio's own timer: a FakeClock must not race this wait in tests.
                async with asyncio.timeout(interval):
                    await self.wakeup.wait()
                return
            except TimeoutError:
                self._patch(RunPatch(heartbeat_at=self.clock.now()))
                self.flush()

    def _launch(self) -> None:
        """Start every ready step; repeat while launches end steps at once (skip, fail)."""
        again = True
        while again:
            decided = self.dag.advance()
            for name, reason in decided.skipped:
                self._finish_step(name, S.SKIPPED, reason=reason)
            again = False
            for name in decided.ready:
                again = not self._launch_one(name) or again

    def _launch_one(self, name: str) -> bool:
        """Start one ready step; False when it ended at once (skipped or failed)."""
        spec = self.specs[name]
        if self.timed_out or self.clock.monotonic() >= self.deadline:
            self.timed_out = True
            self.dag.skip(name, "workflow timed out")
            self._finish_step(name, S.SKIPPED, reason="workflow timed out")
            return False
        try:
            if spec.when is not None and not truthy(spec.when, self.context):
                reason = f"when is false: {spec.when}"
                self.dag.skip(name, reason)
                self._finish_step(name, S.SKIPPED, reason=reason)
                return False
            agent = spec.agent or self.engine.caller.resolve(spec.capability or "")
            inputs = self._render(spec)
            inputs = self._with_capability(spec, agent, inputs)
        except (DevskyyError, ExpressionError) as exc:
            self.dag.fail(name, _describe(exc))
            self._finish_step(name, S.FAILED, error=_describe(exc), error_type=type(exc).__name__)
            return False
        attempt = self.dag.start(name)
        self.started_mono[name] = self.clock.monotonic()
        self._attempt_started(name, attempt)
        self.tasks[name] = asyncio.create_task(self._run_step(spec, agent, inputs), name=name)
        return True

    def _with_capability(
        self, spec: StepSpec, agent: str, inputs: dict[str, Any]
    ) -> dict[str, Any]:
        """Tell an agent of several capabilities which one a ``capability:`` step asked for.

        The capability goes in the ``capability`` input (unless the step sets one); an
        agent with a single capability needs no such hint and gets none.
        """
        if spec.capability is None or "capability" in inputs:
            return inputs
        manifest = self._agent(agent)
        if manifest is None or len(manifest.spec.capabilities) < 2:
            return inputs
        return {**inputs, "capability": spec.capability}

    def _render(self, spec: StepSpec) -> dict[str, Any]:
        rendered: dict[str, Any] = {}
        for key, value in spec.input.items():
            try:
                rendered[key] = render(value, self.context)
            except MissingInput as exc:
                raise MissingInput(f"step {spec.name!r}: input {key!r}: {exc}") from None
            except ExpressionError as exc:
                raise ExpressionError(f"step {spec.name!r}: input {key!r}: {exc}") from None
        if spec.name in self.not_json:
            raise NotSerializable(
                f"step {spec.name!r}: input is not JSON: {self.not_json[spec.name]}"
            )
        # Rendered values come from JSON params and JSON-checked outputs; the literals were
        # checked once in __init__, so the whole input is JSON without another round trip.
        return rendered

    def _attempt_started(self, name: str, attempt: int) -> None:
        now = self.clock.now()
        started = self.records[name].started_at or now
        record = StepRecord(name, S.RUNNING, attempt, started)
        self.attempt_began[name] = now
        self._set(record, StepEvent(name, S.RUNNING, attempt, now))

    def _retry_policy(self, spec: StepSpec, agent: str) -> RetryPolicy:
        if spec.retry is not None:
            return RetryPolicy.from_spec(spec.retry)
        manifest = self._agent(agent)
        return RetryPolicy.from_spec(manifest.spec.retry) if manifest else RetryPolicy()

    def _agent(self, name: str) -> Agent | None:
        # Looked up once per run session: live state may be a store read.
        if name not in self.agent_manifests:
            self.agent_manifests[name] = self.engine.agents(name)
        return self.agent_manifests[name]

    def _timeout(self, spec: StepSpec, agent: str) -> float:
        timeout = spec.timeout_seconds
        if timeout is None:
            manifest = self._agent(agent)
            timeout = manifest.spec.timeout_seconds if manifest else 300.0
        return max(0.0, min(timeout, self.deadline - self.clock.monotonic()))

    def _decide(self, policy: RetryPolicy, tries: int, exc: Exception) -> tuple[float, str | None]:
        """The delay before the next attempt, or why there is none (the give-up reason)."""
        if isinstance(exc, DevskyyError) and not isinstance(exc, ExecutionError):
            return 0.0, f"{type(exc).__name__} is not retried"
        decision = policy.decide(tries, exc, self.engine.random_value())
        if isinstance(decision, GiveUp):
            return 0.0, decision.reason
        delay = decision.seconds if isinstance(decision, DoSleep) else 0.0
        if self.clock.monotonic() + delay >= self.deadline:
            return 0.0, "the workflow timeout leaves no time to retry"
        return delay, None

    async def _run_step(self, spec: StepSpec, agent: str, inputs: dict[str, Any]) -> None:
        name = spec.name
        policy: RetryPolicy | None = None  # compiled on the first failure only
        tries = 1  # attempts in this session: a resumed step gets a fresh retry budget
        try:
            while True:
                try:
                    output = await self._attempt(spec, agent, inputs)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    policy = policy or self._retry_policy(spec, agent)
                    delay, give_up = self._decide(policy, tries, exc)
                    if give_up is not None:
                        if self.clock.monotonic() >= self.deadline:
                            self.timed_out = True
                        self.completions.append(_Outcome(name, error=exc, reason=give_up))
                        return
                    now = self.clock.now()
                    self.dag.retry_wait(name, now + delay)
                    record = replace(
                        self.records[name],
                        status=S.RETRY_WAIT,
                        error=_describe(exc),
                        error_type=type(exc).__name__,
                    )
                    event = StepEvent(
                        name,
                        S.RETRY_WAIT,
                        self.dag.attempts(name),
                        now,
                        _describe(exc),
                        now + delay,
                        self.attempt_began.pop(name, None),
                    )
                    self._set(record, event)
                    self.wakeup.set()
                    if delay > 0:
                        await self.clock.sleep(delay)
                    tries += 1
                    self._attempt_started(name, self.dag.start(name))
                    self.wakeup.set()
                else:
                    self.completions.append(_Outcome(name, output=output))
                    return
        finally:
            self.wakeup.set()

    async def _attempt(self, spec: StepSpec, agent: str, inputs: dict[str, Any]) -> dict[str, Any]:
        timeout = self._timeout(spec, agent)
        if timeout <= 0:
            raise StepTimeout(f"step {spec.name!r}: workflow timed out")
        key = (self.workflow.name, spec.name)
        breakers = self.engine.breakers  # breakers count in monotonic time
        if spec.circuit_breaker is not None:
            breaker = breakers.get(key) or Breaker(BreakerPolicy.from_spec(spec.circuit_breaker))
            admission = breaker.admit(self.clock.monotonic())
            breakers[key] = admission.breaker
            if not admission.allowed:
                raise CircuitOpen(
                    f"step {spec.name!r}: circuit open; retry after {admission.retry_after:.1f}s"
                )
        guarded = spec.circuit_breaker is not None
        try:
            output = await self.engine.caller.call_agent(
                agent, dict(inputs), timeout=timeout, priority=self.workflow.spec.priority
            )
        except asyncio.CancelledError:
            if guarded:
                breakers[key] = breakers[key].release()
            raise
        except Exception:
            if guarded:
                breakers[key] = breakers[key].on_failure(self.clock.monotonic())
            raise
        if guarded:
            breakers[key] = breakers[key].on_success(self.clock.monotonic())
        if not isinstance(output, dict):
            raise NotSerializable(
                f"step {spec.name!r}: agent {agent!r} returned {type(output).__name__}, not a dict"
            )
        try:
            return dict(json_copy(output))
        except (TypeError, ValueError) as exc:
            raise NotSerializable(
                f"step {spec.name!r}: output of agent {agent!r} is not JSON: {exc}"
            ) from None

    def _record_outcome(self, outcome: _Outcome) -> None:
        self.tasks.pop(outcome.name, None)
        if outcome.error is None:
            self._finish_step(outcome.name, S.SUCCEEDED, output=outcome.output)
        else:
            exc = outcome.error
            self._finish_step(
                outcome.name,
                S.FAILED,
                error=_describe(exc),
                error_type=type(exc).__name__,
                reason=outcome.reason,
            )

    def _advance_outcome(self, outcome: _Outcome) -> None:
        if outcome.error is None:
            self.dag.succeed(outcome.name)
        else:
            self.dag.fail(outcome.name, _describe(outcome.error))

    def _close(self) -> RunRecord:
        now = self.clock.now()
        failed = [s.name for s in self.records.values() if s.status is S.FAILED]
        status = RunStatus.FAILED if failed or self.timed_out else RunStatus.SUCCEEDED
        error = None
        if self.timed_out:
            error = f"workflow timed out after {self.workflow.spec.timeout_seconds:g}s"
        elif failed:
            error = f"{STEPS_FAILED} {', '.join(failed)}"
        self._patch(RunPatch(status=status, finished_at=now, error=error, heartbeat_at=now))
        self.flush()
        self.run = replace(
            self.run,
            status=status,
            finished_at=now,
            error=error,
            heartbeat_at=now,
            steps=tuple(self.records[s.name] for s in self.run.steps),
        )
        return self.run

    async def _abandon(self) -> None:
        """Cancelled (Ctrl-C, task cancel): stop steps, record the run as cancelled."""
        for task in self.tasks.values():
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        # The original error matters more than a failed last write; resume recovers.
        with contextlib.suppress(Exception):
            batch, self.completions = self.completions, []
            for outcome in batch:  # results that did arrive are kept
                self._record_outcome(outcome)
            for name in self.tasks:  # attempts cut short: run again on resume
                record = replace(
                    self.records[name],
                    status=S.PENDING,
                    error="CancelledError: the run was cancelled during this step",
                    error_type="CancelledError",
                )
                self._set(record, None)
            self._patch(RunPatch(status=RunStatus.CANCELLED, finished_at=self.clock.now()))
            self.flush()


def _set_fields(patch: RunPatch) -> dict[str, Any]:
    return {k: v for k, v in vars(patch).items() if v is not None}


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
