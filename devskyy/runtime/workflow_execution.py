"""One session of driving one workflow run: the engine's inner loop (see ``workflows``).

``RunExecution.drive()`` asks ``DagProgress`` for ready steps, evaluates ``when``, renders
inputs, and starts one asyncio task per step. A step task only runs the step's attempts
through the one attempt executor (``runtime.attempt``) under ONE plan: the agent's
(``AgentCaller.plan``: its breaker, the priority queue, the timeout, its metrics) with the
step's retry, own breaker and the workflow deadline; each attempt is ONE
``runner.run_attempt``; it reports what happened (attempt started, retry wait, outcome)
and wakes the loop.

The session computes the transitions (step records, events, run patches) and queues
their effects in a ``RunJournal`` (``run_journal``); ``drive`` is the one place that
applies them: it commits (group commit, before dependents start unless they finish
within the commit window) and then calls the progress listener. Inputs and outputs are
``step_inputs``' concern, a step's agent, retry, timeout and breaker ``step_policies'``,
the closing status and what an abort records ``run_endings'``.
A listener that raises fails the run with that error (and the error propagates to the
caller); only real cancellation (``CancelledError``, Ctrl-C) records
the run as ``cancelled``; ``RunnerLost`` (a distributed runner's scheduler went away)
records it ``interrupted``, resumable, its in-flight steps pending; any other error
records it ``failed`` with that error.

It needs from the engine only ``RunServices`` (a Protocol in ``run_services``), so the
engine and its run session do not import each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import types
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, replace
from typing import Any

from devskyy.adapters.run_store import RunFenced
from devskyy.core.dag import DagProgress
from devskyy.core.expressions import ExpressionError, truthy
from devskyy.errors import DevskyyError, NotFound, RunnerLost
from devskyy.model.manifests import StepSpec, Workflow
from devskyy.model.runs import (
    RUNNING,
    SUCCEEDED,
    RunPatch,
    RunRecord,
    RunStatus,
    StepEvent,
    StepRecord,
    StepStatus,
)
from devskyy.runtime.attempt import Plan
from devskyy.runtime.run_endings import abandoning, closing, cut_short, is_cancellation
from devskyy.runtime.run_journal import RunJournal
from devskyy.runtime.run_services import (
    NotSerializable,
    ProgressListener,
    RunServices,
)
from devskyy.runtime.run_services import describe as _describe
from devskyy.runtime.step_context import current_step, enter_step
from devskyy.runtime.step_inputs import StepInputs, checked_output, with_capability
from devskyy.runtime.step_policies import StepPolicies
from devskyy.runtime.step_runner import AttemptNote, set_note

S = StepStatus
DEADLINE_REASON = "the workflow timeout leaves no time to retry"
# A status's text for the expressions' context (``steps.x.status``), without the enum's
# ``.value`` property on the per-step path.
STATUS_TEXT = {status: status.value for status in StepStatus}
Attempt = Callable[[], Awaitable[dict[str, Any]]]


@types.coroutine
def _one_turn() -> Generator[None, None, None]:
    """Give the event loop one turn: ``asyncio.sleep(0)`` without its two frames (a task
    that yields nothing is run again on the loop's next turn)."""
    yield


@dataclass(slots=True)
class _Outcome:
    name: str
    output: dict[str, Any] | None = None
    error: BaseException | None = None
    reason: str | None = None


class RunExecution:
    """One session of driving one run (a fresh run, or a resumed one)."""

    def __init__(
        self,
        engine: RunServices,
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
            s.name: {"output": s.output, "status": STATUS_TEXT[s.status]}
            for s in record.steps
            if s.status.terminal
        }
        self.context = {"params": record.params, "steps": self.steps_context}
        self.journal = RunJournal(engine.store, self.clock, on_step)
        self.completions: list[_Outcome] = []
        self.wakeup = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop  # the loop drive() runs on
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.started_mono: dict[str, float] = {}
        self.attempt_began: dict[str, float] = {}
        self.deadline = self.clock.monotonic() + workflow.spec.timeout_seconds
        self.timed_out = False
        self.policies = StepPolicies(engine, workflow.name)
        self.priority = workflow.spec.priority
        # The plan shared by an agent's steps (see _plan), with the callers' generation.
        self.plans: dict[str, tuple[int, Plan]] = {}
        # Per running step: the runner's note of its current attempt (the worker).
        self.notes: dict[str, AttemptNote] = {}
        # The runner's backend went away (RunnerLost): the run stops, resumable.
        self.lost: RunnerLost | None = None
        self.inputs = StepInputs(workflow)
        # A runner whose results are already fresh JSON copies (the local one checks and
        # copies them) need not have them copied again; one that says it reads no
        # ``AttemptNote`` (the local one) is given none.
        runner = engine.caller.runner
        self.json_out: bool = getattr(runner, "returns_json_copies", False) is True
        self.noted: bool = getattr(runner, "reads_notes", True) is not False

    # -- recording -------------------------------------------------------------------------

    def _set(self, record: StepRecord, event: StepEvent | None) -> None:
        self.records[record.name] = record
        self.journal.step(record, event)

    def _apply(self, commit: bool = True) -> None:
        """THE place effects happen (``RunJournal.apply``): commit, then the listener."""
        self.journal.apply(self.run, commit)

    def _patch(self, patch: RunPatch) -> None:
        self.journal.run_patch(patch)

    def flush(self) -> None:
        """Write everything changed since the last flush in one transaction."""
        self.journal.flush(self.run)

    def _finish_step(
        self,
        name: str,
        status: StepStatus,
        *,
        output: dict[str, Any] | None = None,
        error: str | None = None,
        error_type: str | None = None,
        reason: str | None = None,
    ) -> None:
        now = self.clock.now()
        began = self.started_mono.pop(name, None)
        duration = None if began is None else self.clock.monotonic() - began
        attempts = self.dag.attempts(name)
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
            error_type,
            reason,
        )
        began = self.attempt_began.pop(name, None)
        note = self.notes.pop(name, None)
        worker = None if note is None else note.worker
        event = StepEvent(name, status, attempts, now, error or reason, None, began, worker)
        self._set(record, event)
        self.steps_context[name] = {"output": output, "status": STATUS_TEXT[status]}

    # -- driving ---------------------------------------------------------------------------

    async def drive(self) -> RunRecord:
        self.loop = asyncio.get_running_loop()
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
                    await _one_turn()
                if not self.completions:
                    self._apply()
                    await self._idle()
                self.wakeup.clear()
                if self.lost is not None:
                    raise self.lost
                batch, self.completions = self.completions, []
                for outcome in batch:
                    self._record_outcome(outcome)
                # Group commit: results are durable before dependents start, unless steps
                # finish faster than the commit window; then one commit covers the window.
                window = self.engine.commit_interval
                self._apply(
                    not window or self.clock.monotonic() - self.journal.flushed_at >= window
                )
                for outcome in batch:
                    self._advance_outcome(outcome)
            return self._close()
        except BaseException as exc:
            await self._abandon(exc)
            raise

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
        now = self.clock.monotonic()
        if self.timed_out or now >= self.deadline:
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
            inputs = self.inputs.render(spec, self.context)
            if spec.capability is not None:
                inputs = with_capability(spec, self.policies.agent(agent), inputs)
        except (DevskyyError, ExpressionError) as exc:
            self.dag.fail(name, _describe(exc))
            self._finish_step(name, S.FAILED, error=_describe(exc), error_type=type(exc).__name__)
            return False
        attempt = self.dag.start(name)
        self.started_mono[name] = now
        self._attempt_started(name, attempt)
        # The loop's own create_task: asyncio.create_task looks the loop up and names the
        # task in two more calls, per step.
        self.tasks[name] = self.loop.create_task(self._run_step(spec, agent, inputs), name=name)
        return True

    def _attempt_started(self, name: str, attempt: int) -> None:
        now = self.clock.now()
        started = self.records[name].started_at or now
        record = StepRecord(name, RUNNING, attempt, started)
        self.attempt_began[name] = now
        self._set(record, StepEvent(name, RUNNING, attempt, now))

    def _plan(self, spec: StepSpec, agent: str, attempt: Attempt) -> tuple[Plan, Attempt]:
        """The step's one plan: the agent's (breaker, priority slot, timeout, metrics) with
        the step's retry, own breaker and the workflow's deadline; and what each attempt
        calls.

        The steps of an agent that set no retry, timeout or breaker of their own share one
        plan per session (until the registered agents change): its hooks and its deadline
        error name the step from the step's task context (``enter_step``), where the
        executor calls them.
        """
        caller = self.engine.caller
        own = (
            spec.retry is not None
            or spec.timeout_seconds is not None
            or spec.circuit_breaker is not None
        )
        generation = caller.generation()
        if not own:
            shared = self.plans.get(agent)
            if shared is not None and shared[0] == generation:
                return shared[1], attempt
        timeout = self.policies.timeout(spec, agent, math.inf)
        retry = self.policies.retry(spec, agent)
        breakers = self.policies.breakers(spec)
        try:
            plan = caller.plan(
                agent,
                timeout=timeout,
                priority=self.priority,
                retry=retry,
                breakers=breakers,
                deadline=self.deadline,
                deadline_reason=DEADLINE_REASON,
                deadline_error=self._deadline_error,
                on_retry=self._on_retry,
                before_attempt=self._before_attempt,
            )
        except NotFound:
            pass
        else:
            if not own:
                self.plans[agent] = (generation, plan)
            return plan, attempt

        # Not registered: still starting (every attempt waits for its start to end), or
        # it did not start; every attempt looks the agent up again, as a call does, and
        # fails with ``NotFound`` while it is missing.
        async def late() -> dict[str, Any]:
            started = caller.ready(agent)
            if started is not None:
                await started.wait()
            plan = caller.plan(agent, timeout=timeout, priority=self.priority)
            return await self.engine.executor.once(attempt, plan)

        step = Plan(
            f"step {spec.name!r}",
            retry,
            breakers=breakers,
            deadline=self.deadline,
            deadline_reason=DEADLINE_REASON,
            deadline_error=self._deadline_error,
            on_retry=self._on_retry,
            before_attempt=self._before_attempt,
        )
        return step, late

    @staticmethod
    def _step_name() -> str:
        """The step whose task is running (the plan's hooks run in it)."""
        ref = current_step()
        assert ref is not None  # every step task enters its step first
        return ref.step

    def _on_retry(self, _attempt: int, exc: Exception, delay: float) -> None:
        if isinstance(exc, RunnerLost):
            self.lost = exc  # the loop stops the run instead of waiting for the retry
        self._retry_wait(self._step_name(), exc, delay)

    def _before_attempt(self, _attempt: int) -> None:
        name = self._step_name()
        self._attempt_started(name, self.dag.start(name))
        self.wakeup.set()

    def _deadline_error(self) -> str:
        return f"step {self._step_name()!r}: workflow timed out"

    def _retry_wait(self, name: str, exc: Exception, delay: float) -> None:
        now = self.clock.now()
        self.dag.retry_wait(name, now + delay)
        record = replace(
            self.records[name],
            status=S.RETRY_WAIT,
            error=_describe(exc),
            error_type=type(exc).__name__,
        )
        began = self.attempt_began.pop(name, None)
        attempts = self.dag.attempts(name)
        note = self.notes.get(name)
        worker = None if note is None else note.worker
        self._set(
            record,
            StepEvent(name, S.RETRY_WAIT, attempts, now, record.error, now + delay, began, worker),
        )
        self.wakeup.set()

    def _attempt(self, spec: StepSpec, agent: str, inputs: dict[str, Any]) -> Attempt:
        """What each attempt of the step calls: the runner's own coroutine (no layer more
        per step). A runner that reads notes is told of each attempt first, in the note
        ``set_note`` gave the step's task (a ``RunnerLost`` it raises stops the run:
        ``_on_retry``, or ``_run_step`` when not retried)."""
        runner = self.engine.caller.runner
        if not self.noted:
            return lambda: runner.run_attempt(agent, dict(inputs))
        name = spec.name
        note = self.notes[name] = AttemptNote(self.priority, agent=self.policies.agent(agent))
        set_note(note)

        def attempt() -> Awaitable[dict[str, Any]]:
            note.attempt = self.dag.attempts(name)
            note.worker = None
            # The limit the executor sets (the step's timeout, never past the deadline):
            # a remote runner stops the attempt there too.
            note.timeout = self.policies.timeout(
                spec, agent, self.deadline - self.clock.monotonic()
            )
            return runner.run_attempt(agent, dict(inputs))

        return attempt

    async def _run_step(self, spec: StepSpec, agent: str, inputs: dict[str, Any]) -> None:
        name = spec.name
        try:
            # A resumed step gets a fresh retry budget: attempts count in this session.
            # The step's own task: the agent keys its side effects by run and step (issue
            # 19.7) and a runner reads the note; both die with the task's context.
            enter_step(self.run.id, name)
            plan, call = self._plan(spec, agent, self._attempt(spec, agent, inputs))
            done = await self.engine.executor.run(call, plan)
            if done.error is None:
                output = self._output(spec, agent, done.result)
                self.completions.append(_Outcome(name, output=output))
            elif isinstance(done.error, RunnerLost):
                # Not an outcome: the loop stops the run (the attempt is still recorded)
                # and the step runs again when the run is resumed.
                self.lost = done.error
            else:
                if self.clock.monotonic() >= self.deadline:
                    self.timed_out = True
                self.completions.append(_Outcome(name, error=done.error, reason=done.reason))
        except NotSerializable as exc:
            self.completions.append(_Outcome(name, error=exc, reason=None))
        finally:
            self.wakeup.set()

    def _output(self, spec: StepSpec, agent: str, output: Any) -> dict[str, Any]:
        """The JSON dict a step produced (a caller other than the orchestrator may err)."""
        if self.json_out:
            return output  # type: ignore[no-any-return]
        return checked_output(spec, agent, output)

    def _record_outcome(self, outcome: _Outcome) -> None:
        self.tasks.pop(outcome.name, None)
        if outcome.error is None:
            self._finish_step(outcome.name, SUCCEEDED, output=outcome.output)
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
        self._apply(commit=False)  # the listener hears of the last skips before the end
        now = self.clock.now()
        status, error = closing(
            self.records.values(), self.timed_out, self.workflow.spec.timeout_seconds
        )
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

    async def _abandon(self, error: BaseException) -> None:
        """Stop the steps; record the run cancelled (real cancellation) or failed (error)."""
        for task in self.tasks.values():
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        if isinstance(error, RunFenced):  # the run is another owner's now: write nothing
            return
        why, patch = abandoning(error, self.clock.now())
        # The original error matters more than a failed last write; resume recovers.
        with contextlib.suppress(Exception):
            batch, self.completions = self.completions, []
            for outcome in batch:  # results that did arrive are kept
                self._record_outcome(outcome)
            for name in self.tasks:  # attempts cut short: run again on resume
                self._set(cut_short(self.records[name], why), None)
            self._patch(patch)
            self.flush()
            if is_cancellation(error):  # a failed listener is not called again
                with contextlib.suppress(Exception):
                    self._apply(commit=False)
