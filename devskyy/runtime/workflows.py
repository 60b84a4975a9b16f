"""The workflow engine: runs a Workflow manifest as a DAG of agent calls, durably.

``WorkflowEngine.run(name, params)`` validates the params against the manifest, writes
a run record, and drives ``core.dag.DagProgress``: every step whose needs are met starts
at once (asyncio tasks), its input rendered by ``core.expressions.render`` from
``{"params": …, "steps": {name: {"output": …, "status": …}}}``. Per step:

* ``when`` false → skipped (and the skip propagates to ``all_succeeded`` dependents);
* the target is ``agent``, or the agent ``caller.resolve(capability)`` names;
* the attempts run through the one attempt executor (``runtime.attempt``) under one plan:
  the agent's (``caller.plan``: its breaker, the priority slot, the timeout, its metrics)
  completed with the step's; each attempt is ONE ``caller.runner.run_attempt`` (the step
  runner of docs/architecture.md: JSON in, JSON out); the step's ``retry`` (else
  the agent's) compiles into ``core.retry.RetryPolicy``, whose sleeps go through the
  clock; a step with ``circuitBreaker`` gets its own breaker (kept by the engine across
  runs, keyed by workflow and step);
* a compiled workflow (``execute_task``'s, recorded as ``task:<type>``) is run the same
  way; ``workflow_of(record)`` recompiles it from the run's params for resume;
* the call timeout is the step's ``timeoutSeconds`` (else the agent's), never beyond the
  workflow's ``timeoutSeconds`` (counted from when this process started or resumed the run);
* an input expression that yields nothing fails the step with ``MissingInput`` naming the
  step, the input and the expression; nothing is called.

Durability: every state change becomes a ``StepRecord`` plus a ``StepEvent``, written
through ``RunStore.write`` as it happens (group commit). Whenever the engine waits for a
running step, everything so far is committed first; results that arrive together share
one commit. Only a result that arrives within ``commit_interval`` (2 ms by default) of
the previous commit may let its dependents start before its own commit, which then
follows at the next wait or window end: ``kill -9`` loses the attempts in flight plus at
most that window's results, which ``resume`` runs again. ``commit_interval=0`` commits
every result before any dependent starts (``benchmarks/bench_workflow.py`` shows both).

``resume(run_id)`` rebuilds the DAG from the recorded events (``DagProgress.restore``)
and finishes the run without re-running steps whose success was recorded. A run whose
owning process died is shown as ``interrupted`` (``effective_status``); a waiting run
writes a heartbeat every 30 s. Cancelling the task that runs a run (Ctrl-C) records it as
``cancelled``, which is resumable too.

Every drive holds the run's owner generation (``RunRecord.generation``, raised by each
claim): its writes carry it and the store refuses them once another process took the run
over (``RunFenced``), so the stale driver stops without writing. ``take_over(record)``
is how a survivor continues a run whose owner died (``runtime/takeover.py``).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from devskyy.adapters.clock import Clock
from devskyy.adapters.run_store import RunStore, owner_alive, process_owner
from devskyy.core.breaker import Breaker
from devskyy.core.dag import DagProgress, nodes_of
from devskyy.core.retry import RetryPolicy
from devskyy.errors import (
    DevskyyError,
    NotFound,
    StateError,
)
from devskyy.model.manifests import Agent, Workflow
from devskyy.model.runs import (
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
)
from devskyy.runtime.attempt import AttemptExecutor, StepBreaker
from devskyy.runtime.run_services import (
    STEPS_FAILED,
    AgentCaller,
    NotSerializable,
    ProgressListener,
    ProgressListenerError,
)
from devskyy.runtime.workflow_execution import RunExecution

__all__ = [
    "AgentCaller",
    "NotSerializable",
    "ParamsError",
    "ProgressListener",
    "ProgressListenerError",
    "WorkflowEngine",
    "effective_status",
    "not_applied",
    "to_guide_shape",
    "validate_params",
]

S = StepStatus
DEFAULT_COMMIT_WINDOW = 0.002
"""Seconds: finished steps within this window share one commit (0 commits every batch)."""
HEARTBEAT_INTERVAL = 30.0
"""Seconds between heartbeats of a running run that is waiting for a long step."""
STALE_AFTER = 4 * HEARTBEAT_INTERVAL
"""A run on another host whose heartbeat is older than this is shown as interrupted."""

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


class ParamsError(DevskyyError):
    """Workflow parameters do not match the workflow's declared ``params``."""


def not_applied(name: str) -> NotFound:
    """The error for a workflow that is not in live state."""
    return NotFound(f'workflow "{name}" is not applied (run devskyy apply first)')


def validate_params(workflow: Workflow, params: Mapping[str, Any]) -> dict[str, Any]:
    """Params with defaults filled in; ``ParamsError`` listing every problem at once."""
    declared = workflow.spec.params
    problems: list[str] = []
    for name in sorted(set(params) - set(declared)):
        known = ", ".join(sorted(declared)) or "none"
        problems.append(f'unknown parameter "{name}" (declared: {known})')
    result: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in params:
            value = params[name]
        elif spec.default is not None:
            value = spec.default
        elif spec.required:
            problems.append(f'missing required parameter "{name}" ({spec.type})')
            continue
        else:
            continue
        allowed = _JSON_TYPES[spec.type]
        wrong_bool = isinstance(value, bool) and spec.type != "boolean"
        if wrong_bool or not isinstance(value, allowed):
            problems.append(
                f'parameter "{name}" must be {_article(spec.type)}, '
                f"not {_json_type(value)} ({json.dumps(value, default=repr)})"
            )
            continue
        result[name] = value
    if problems:
        raise ParamsError(f'workflow "{workflow.name}": ' + "; ".join(problems))
    try:
        return dict(json.loads(json.dumps(result)))
    except (TypeError, ValueError) as exc:
        raise ParamsError(f'workflow "{workflow.name}": params are not JSON: {exc}') from None


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _json_type(value: Any) -> str:
    for kind, types in _JSON_TYPES.items():
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, types) and kind != "number":
            return kind
    return "null" if value is None else type(value).__name__


def effective_status(run: RunRecord, now: float, *, stale_after: float = STALE_AFTER) -> RunStatus:
    """A running (or never started) run whose process is gone is ``interrupted``.

    On this host the owner's pid decides; for a run owned on another host, a heartbeat
    older than ``stale_after`` does (the engine writes one every ``HEARTBEAT_INTERVAL``).
    """
    if run.status not in (RunStatus.RUNNING, RunStatus.PENDING):
        return run.status
    alive = owner_alive(run.owner)
    if alive is False:
        return RunStatus.INTERRUPTED
    if alive is None and run.heartbeat_at is not None and now - run.heartbeat_at > stale_after:
        return RunStatus.INTERRUPTED
    return run.status


def to_guide_shape(record: RunRecord) -> dict[str, Any]:
    """The guide's ``execute_workflow`` result: status, each step's output, errors, run id.

    ``status`` is ``"completed"`` or ``"failed"``; a step that produced no output (failed or
    skipped) maps to ``None``. The keys ``status``, ``errors`` and ``run_id`` win over a
    step of the same name (the full record is in the run store).
    """
    shape: dict[str, Any] = {s.name: s.output for s in record.steps}
    errors = [f"{s.name}: {s.error}" for s in record.steps if s.status is S.FAILED and s.error]
    if record.error and not record.error.startswith(STEPS_FAILED):
        errors.append(record.error)
    shape["status"] = "completed" if record.status is RunStatus.SUCCEEDED else "failed"
    shape["errors"] = errors
    shape["run_id"] = record.id
    return shape


class WorkflowEngine:
    """Runs workflows through an ``AgentCaller``, recording everything in a ``RunStore``."""

    def __init__(
        self,
        caller: AgentCaller,
        run_store: RunStore,
        clock: Clock,
        workflows: Callable[[str], Workflow | None],
        *,
        agents: Callable[[str], Agent | None] | None = None,
        defaults: Callable[[str], tuple[RetryPolicy | None, float | None]] | None = None,
        random_value: Callable[[], float] = random.random,
        owner: str | None = None,
        id_factory: Callable[[], str] | None = None,
        commit_interval: float = DEFAULT_COMMIT_WINDOW,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
    ) -> None:
        self.caller = caller
        self.store = run_store
        self.clock = clock
        self._workflows = workflows
        self.agents: Callable[[str], Agent | None] = agents or (lambda _name: None)
        self._defaults = defaults
        self.executor = AttemptExecutor(clock, random_value)
        self.owner = owner or process_owner()
        self._new_id = id_factory or _random_id
        self.commit_interval = commit_interval
        self.heartbeat_interval = heartbeat_interval
        self.breakers: dict[tuple[str, str], StepBreaker] = {}
        self.compilers: dict[str, Callable[[dict[str, Any]], Workflow]] = {}

    def use_workflows(self, workflows: Callable[[str], Workflow | None]) -> None:
        """Look named workflows up with ``workflows`` (``open_system`` wires live state)."""
        self._workflows = workflows

    def use_agents(self, agents: Callable[[str], Agent | None]) -> None:
        """Look Agent manifests up with ``agents``."""
        self.agents = agents

    def agent_manifest(self, name: str) -> Agent | None:
        return self.agents(name)

    def agent_defaults(
        self, name: str, manifest: Agent | None
    ) -> tuple[RetryPolicy | None, float | None]:
        """The agent's retry policy and timeout: its manifest's (``agent_manifest``), else
        the caller's."""
        if manifest is not None:
            return RetryPolicy.from_spec(manifest.spec.retry), manifest.spec.timeout_seconds
        return self._defaults(name) if self._defaults is not None else (None, None)

    def workflow(self, name: str) -> Workflow:
        """The applied Workflow manifest; ``NotFound`` when it is not applied."""
        workflow = self._workflows(name)
        if workflow is None:
            raise not_applied(name)
        return workflow

    def workflow_of(self, record: RunRecord) -> Workflow:
        """The workflow a run runs: a compiled one (``prefix:...``), else the applied one."""
        prefix, colon, _ = record.workflow.partition(":")
        if colon and prefix + ":" in self.compilers:
            return self.compilers[prefix + ":"](record.params)
        return self.workflow(record.workflow)

    def breaker(self, workflow: str, step: str) -> Breaker | None:
        """The step-level breaker of a step, if it has one and it has been used."""
        cell = self.breakers.get((workflow, step))
        return None if cell is None else cell.breaker

    def new_id(self) -> str:
        """A fresh run id (the engine's id factory)."""
        return self._new_id()

    def create(self, workflow_name: str, params: Mapping[str, Any]) -> RunRecord:
        """Validate and record a new pending run (``execute`` then runs it)."""
        workflow = self.workflow(workflow_name)
        return self.create_run(workflow, workflow.name, validate_params(workflow, params))

    def create_run(
        self, workflow: Workflow, name: str, params: dict[str, Any], *, run_id: str | None = None
    ) -> RunRecord:
        """Record a new pending run of a compiled workflow (a task) under ``name``; under
        ``run_id`` when the caller chose it first (a schedule's fire names its run)."""
        now = self.clock.now()
        record = RunRecord(
            id=run_id or self.new_id(),
            workflow=name,
            params=params,
            status=RunStatus.PENDING,
            created_at=now,
            owner=self.owner,
            heartbeat_at=now,
            steps=tuple(StepRecord(s.name) for s in workflow.spec.steps),
        )
        return self.store.create(record)  # as stored: keys in params redacted

    async def run(
        self,
        workflow_name: str,
        params: Mapping[str, Any] | None = None,
        *,
        on_step: ProgressListener | None = None,
    ) -> RunRecord:
        """Run a workflow to its end; returns the final run record."""
        record = self.create(workflow_name, params or {})
        return await self._execute(record, on_step)

    async def execute(
        self, run: str | RunRecord, *, on_step: ProgressListener | None = None
    ) -> RunRecord:
        """Run a pending run created by ``create``: by id (read from the store), or the
        record ``create`` returned to this process (not read back: a 1,000-step run is
        a thousand rows)."""
        record = self.store.get(run) if isinstance(run, str) else run
        if record.status is not RunStatus.PENDING:
            raise StateError(f'run "{record.id}" is {record.status.value}, not pending')
        return await self._execute(record, on_step)

    async def _execute(self, record: RunRecord, on_step: ProgressListener | None) -> RunRecord:
        workflow = self.workflow_of(record)
        execution = RunExecution(
            self, workflow, record, DagProgress.from_workflow(workflow), on_step
        )
        return await execution.drive()

    def resumable(self, run_id: str) -> tuple[RunRecord, Workflow]:
        """The run and its workflow if ``resume`` may take it; ``StateError`` says why not."""
        record = self.store.get(run_id)
        status = effective_status(record, self.clock.now())
        if status in (RunStatus.RUNNING, RunStatus.PENDING):
            raise StateError(f'run "{run_id}" is still {status.value} (owner {record.owner})')
        if status.finished and status is not RunStatus.CANCELLED:
            raise StateError(f'run "{run_id}" already {status.value}; nothing to resume')
        return record, self._same_steps(record, "resumed")

    async def resume(self, run_id: str, *, on_step: ProgressListener | None = None) -> RunRecord:
        """Finish an interrupted run; steps that succeeded are not run again."""
        record, workflow = self.resumable(run_id)
        generation = self.store.claim(
            run_id, expected_owner=record.owner, owner=self.owner, now=self.clock.now()
        )
        if generation is None:
            raise StateError(f'run "{run_id}" was taken over by another process')
        return await self._continue(replace(record, generation=generation), workflow, on_step)

    async def take_over(
        self, record: RunRecord, *, on_step: ProgressListener | None = None
    ) -> RunRecord | None:
        """Continue a running or pending run whose owner is gone, as its new owner.

        The take-over is conditional on the generation ``record`` was read with: of two
        survivors only one wins; the other (and the old owner, were it alive) gets None or
        ``RunFenced``. Succeeded steps are not run again.
        """
        workflow = self._same_steps(self.store.get(record.id), "taken over")
        generation = self.store.take_over(
            record.id, generation=record.generation, owner=self.owner, now=self.clock.now()
        )
        if generation is None:
            return None
        # Read again under the new generation: nothing the old owner wrote before the
        # take-over is lost, and nothing it writes after it is accepted.
        current = replace(self.store.get(record.id), generation=generation)
        return await self._continue(current, workflow, on_step)

    def _same_steps(self, record: RunRecord, verb: str) -> Workflow:
        """The run's workflow, if it still has the steps the run recorded; else it cannot
        be ``verb`` (``StateError``)."""
        workflow = self.workflow_of(record)
        if [s.name for s in workflow.spec.steps] != [s.name for s in record.steps]:
            raise StateError(
                f'run "{record.id}" has other steps than workflow "{workflow.name}" has now; '
                f"it cannot be {verb}"
            )
        return workflow

    async def _continue(
        self, record: RunRecord, workflow: Workflow, on_step: ProgressListener | None
    ) -> RunRecord:
        run_id = record.id
        dag = DagProgress.restore(
            nodes_of(workflow), self.store.events(run_id), fail_fast=workflow.spec.fail_fast
        )
        steps = tuple(
            s if dag.status(s.name).terminal else replace(s, status=S.PENDING) for s in record.steps
        )
        record = replace(
            record,
            steps=steps,
            owner=self.owner,
            status=RunStatus.RUNNING,
            finished_at=None,
            error=None,
        )
        return await RunExecution(self, workflow, record, dag, on_step).drive()


def _random_id() -> str:
    return uuid.uuid4().hex[:12]
