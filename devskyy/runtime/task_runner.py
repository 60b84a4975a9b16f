"""Tasks as workflow runs: compile, cache, record, and the guide's result.

``TaskRunner`` is the orchestrator's task half (``Orchestrator.execute_task`` and friends
delegate here). ``compile`` turns a ``TaskRequest`` into a Workflow value
(``core.tasks.compile_task``) once per shape: the workflow depends on the registered
agents (their generation) and on the names of the parameters, never on their values (the
steps read those from the run's params). ``create`` records the pending run
(``task:<type>``) in the engine's run store; ``recompile`` gives the engine the workflow of
a recorded task for resume; ``finish`` counts a finished task and adds it to the execution
history; ``result`` is the guide's result shape (``status`` completed|failed, ``results``
and ``errors`` per step, ``attempts``, ``agents``, ``run_id``, and a top-level ``error``
with one line per failed agent: ``agent 'fixer' failed: <error> (<why not retried>)``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from devskyy.adapters.history_store import ExecutionRecord, HistoryStore
from devskyy.core.selection import AgentInfo
from devskyy.core.tasks import InputsOf, TaskRequest, compile_task
from devskyy.model.manifests import Workflow
from devskyy.model.runs import RunRecord, RunStatus, StepStatus
from devskyy.runtime.workflows import WorkflowEngine

COMPILED_CACHE = 256
"""Compiled task workflows kept (per agent generation and request shape)."""


@dataclass(frozen=True)
class TaskExecution(ExecutionRecord):
    """A task's history record, with its step names (the history keeps agents only)."""

    task_steps: tuple[str, ...] = ()


class TaskRunner:
    """Compiles, records and reports tasks (see the module docstring)."""

    def __init__(
        self,
        workflows: WorkflowEngine,
        history: HistoryStore,
        agents: Callable[[], Mapping[str, AgentInfo]],
        inputs_of: InputsOf,
        generation: Callable[[], int],
    ) -> None:
        self.workflows = workflows
        self.history = history
        self._agents = agents
        self._inputs_of = inputs_of
        self._generation = generation
        self._compiled: dict[tuple[Any, ...], Workflow] = {}
        self.counts = {"completed": 0, "failed": 0}

    def compile(self, request: TaskRequest) -> Workflow:
        """The Workflow value that runs ``request`` over the agents registered now."""
        key = (
            self._generation(),
            request.task_type,
            request.required_capabilities,
            request.priority,
            tuple(sorted(request.parameters)),
        )
        workflow = self._compiled.get(key)
        if workflow is None:
            workflow = compile_task(request, self._agents(), self._inputs_of)
            if len(self._compiled) >= COMPILED_CACHE:
                self._compiled.clear()  # old generations and rare shapes; cheap to rebuild
            self._compiled[key] = workflow
        return workflow

    def create(self, request: TaskRequest) -> RunRecord:
        """Compile and record a task as a pending run of the engine."""
        workflow = self.compile(request)
        return self.workflows.create_run(workflow, request.workflow_name, request.as_params())

    def recompile(self, record_params: dict[str, Any]) -> Workflow:
        """The workflow of a recorded task run (for resume)."""
        return self.compile(TaskRequest.from_params(record_params))

    def finish(self, record: RunRecord) -> dict[str, Any]:
        """Count a finished task run and add it to the execution history; its result."""
        execution = self._execution(record)
        self.counts[execution.status] += 1
        self.history.append(execution)
        return self.result(record, execution)

    def result(self, record: RunRecord, execution: TaskExecution | None = None) -> dict[str, Any]:
        """The guide's result of a task run (no side effects)."""
        execution = execution or self._execution(record)
        agents = dict(zip(execution.task_steps, execution.agents, strict=True))
        failures = [
            f"agent {agents[name]!r} failed: {why}"
            for name, why in execution.errors.items()
            if not why.startswith("skipped: ")
        ]
        if record.error and not failures and record.status.finished:
            failures.append(record.error)
        return {
            **execution.as_dict(),
            "run_id": record.id,
            "error": "\n".join(failures) or None,  # one line per failed agent
            "execution_time": execution.duration,
        }

    def _execution(self, record: RunRecord) -> TaskExecution:
        workflow = self.workflows.workflow_of(record)
        agents = {s.name: s.agent or "" for s in workflow.spec.steps}
        results = {s.name: s.output for s in record.steps if s.status is StepStatus.SUCCEEDED}
        errors: dict[str, str] = {}
        for step in record.steps:
            if step.status is StepStatus.FAILED:
                errors[step.name] = (
                    f"{step.error} ({step.reason})" if step.reason else f"{step.error}"
                )
            elif step.status is StepStatus.SKIPPED:
                errors[step.name] = f"skipped: {step.reason}"
        return TaskExecution(
            task_id=record.id,
            task_type=str(record.params.get("task_type", "")),
            status="completed" if record.status is RunStatus.SUCCEEDED else "failed",
            priority=str(record.params.get("priority", "medium")),
            started_at=record.started_at or record.created_at,
            duration=record.duration or 0.0,
            agents=tuple(agents[s.name] for s in record.steps),
            attempts={s.name: s.attempts for s in record.steps if s.attempts},
            results=results,
            errors=errors,
            task_steps=tuple(s.name for s in record.steps),
        )
