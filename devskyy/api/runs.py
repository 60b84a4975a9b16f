"""Long work in the background: orchestrator tasks and workflow runs, read back from the store.

``Runs.start_task`` / ``Runs.start_workflow`` record the run first (so its id exists
in the store before the answer leaves), then start it with the system's
``BackgroundTasks`` (the daemon's graceful stop drains them; a run cancelled there
stays resumable). A task is a workflow run of the DAG engine (``task:<type>``, compiled
by the orchestrator), so it is durable and resumable like any run. ``wait_for`` lets a
caller wait, bounded. ``view`` reads a run from the run store (a dead owner reads
``interrupted``; a task's result is the guide's task shape); tasks recorded before they
were workflow runs are read from ``api_task_runs``. Every view shows server paths as
``api/paths_out.py`` says (workspace-relative, else ``<server path>``); the store keeps them
as the agents reported them. ``resume`` continues a run where it
stopped, or starts such an old task again from its recorded request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

from devskyy.adapters.run_store import owner_alive, process_owner
from devskyy.adapters.task_runs import SqlTaskRuns, TaskRun
from devskyy.api.deps import ApiError
from devskyy.api.paths_out import ShownPaths
from devskyy.core.jsonvalue import JsonLimitError, check_json_depth
from devskyy.core.keys import redact, redact_text
from devskyy.core.tasks import TASK_PREFIX
from devskyy.errors import NotFound, StateError, StoredValueTooDeep
from devskyy.model.runs import RunRecord, RunStatus
from devskyy.runtime.background import background_of
from devskyy.runtime.system import System
from devskyy.runtime.workflows import WorkflowEngine, effective_status, to_guide_shape

RunObserver = Callable[[str, str], None]
"""Called with (kind, final status) when a background run ends (metrics)."""

_RESUMABLE_TASK = ("interrupted", "cancelled")


def _answerable(record: RunRecord) -> None:
    """Refuse (422) a stored run whose parameters or outputs are nested past the limit.

    Such a run was stored by something other than the API (which refuses the body); its
    answer would recurse once per level while it is built and encoded (a 500 before).
    """
    try:
        check_json_depth(record.params)
        for step in record.steps:
            check_json_depth(step.output)
    except JsonLimitError as exc:
        _refuse_deep(record.id, str(exc))


def _refuse_deep(run_id: str, reason: str) -> NoReturn:
    """The 422 for a stored run past the JSON limits (read back, or refused by the store)."""
    field = {"loc": ["run", run_id], "msg": f"stored run: {reason}", "type": "json_too_deep"}
    raise ApiError(422, "invalid_request", [field]) from None


class Runs:
    """Starts and reads runs for the API."""

    def __init__(
        self,
        system: System,
        observe: RunObserver | None = None,
        *,
        paths: ShownPaths,
    ) -> None:
        self.system = system
        self.paths = paths  # the app's (ApiContext.paths), roots resolved once
        self.tasks = SqlTaskRuns(system.engine)
        self.owner = process_owner()
        self._observe = observe or (lambda _kind, _status: None)
        self._running: dict[str, asyncio.Task[Any]] = {}

    @property
    def engine(self) -> WorkflowEngine:
        return self.system.registry.workflow_engine()

    # -- starting ------------------------------------------------------------------------

    def start_task(self, request: dict[str, Any], run_id: str | None = None) -> str:
        """Record a task as a workflow run of the DAG engine and start it; returns its id.

        ``run_id`` names a task recorded before tasks were workflow runs (``api_task_runs``):
        it starts again from its recorded request.
        """
        if run_id is not None:
            self.tasks.update(run_id, status="pending", owner=self.owner, error=None)
            self._start(run_id, self._task(run_id, request))
            return run_id
        record = self.system.orchestrator.create_task(
            request["task_type"],
            request.get("parameters") or {},
            request.get("required_capabilities") or [],
            request.get("priority", "medium"),
        )
        self._start(record.id, self._task_run(self.system.orchestrator.run_task(record)))
        return record.id

    async def _task_run(self, work: Coroutine[Any, Any, dict[str, Any]]) -> None:
        status = "failed"
        try:
            result = await work
            status = "succeeded" if result["status"] == "completed" else "failed"
        except asyncio.CancelledError:
            status = "cancelled"
            raise
        finally:
            self._observe("task", status)

    async def _task(self, run_id: str, request: dict[str, Any]) -> None:
        self.tasks.update(run_id, status="running")
        status = "failed"
        try:
            result = await self.system.orchestrator.execute_task(
                task_type=request["task_type"],
                parameters=request.get("parameters") or {},
                required_capabilities=request.get("required_capabilities") or [],
                priority=request.get("priority", "medium"),
            )
            status = "succeeded" if result.get("status") == "completed" else "failed"
            self.tasks.update(  # a key found by an agent is stored as [redacted]
                run_id, status=status, result=redact(result), finished_at=self.system.clock.now()
            )
        except asyncio.CancelledError:
            status = "cancelled"
            self.tasks.update(run_id, status=status, error="cancelled (server stopping)")
            raise
        except Exception as exc:
            self.tasks.update(
                run_id,
                status=status,
                error=redact_text(f"{type(exc).__name__}: {exc}")[:2000],
                finished_at=self.system.clock.now(),
            )
        finally:
            self._observe("task", status)

    def start_workflow(self, workflow_name: str, parameters: dict[str, Any]) -> str:
        """Validate and record a workflow run, then start it; returns its id."""
        record = self.engine.create(workflow_name, parameters)
        self._start(record.id, self._workflow(self.engine.execute(record)))
        return record.id

    async def _workflow(self, work: Any) -> None:
        status = "failed"
        try:
            record: RunRecord = await work
            status = record.status.value
        except asyncio.CancelledError:
            status = "cancelled"
            raise
        finally:
            self._observe("workflow", status)

    def _start(self, run_id: str, coro: Any) -> None:
        task = background_of(self.system).start(coro, name=f"run-{run_id}")
        self._running[run_id] = task
        task.add_done_callback(lambda _t: self._running.pop(run_id, None))

    async def wait_for(self, run_id: str, timeout: float) -> None:
        """Wait until the run ends or ``timeout`` passes (the run goes on either way)."""
        task = self._running.get(run_id)
        if task is None:
            return
        with contextlib.suppress(TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(task), timeout)

    # -- reading -------------------------------------------------------------------------

    def view(self, run_id: str) -> dict[str, Any]:
        """The run as the store has it now, its paths as answers show them (``paths_out``);
        ``NotFound`` when no run has that id."""
        view: dict[str, Any] = self.paths.shown(self._view(run_id))
        return view

    def _view(self, run_id: str) -> dict[str, Any]:
        try:
            record = self.engine.store.get(run_id)
        except NotFound:
            return self._task_view(self.tasks.get(run_id))
        except StoredValueTooDeep as exc:  # refused by the store before decoding it
            _refuse_deep(run_id, exc.reason)
        _answerable(record)
        status = effective_status(record, self.system.clock.now())
        record = record.with_status(status)
        done = sum(1 for s in record.steps if s.status.terminal)
        task = record.workflow.startswith(TASK_PREFIX)
        result = None
        if status.finished:
            orchestrator = self.system.orchestrator
            result = orchestrator.task_result(record) if task else to_guide_shape(record)
        return {
            "run_id": record.id,
            "kind": "task" if task else "workflow",
            "status": status.value,
            "workflow": record.workflow,
            "progress": {"steps_done": done, "steps_total": len(record.steps)},
            "resumable": status in (RunStatus.INTERRUPTED, RunStatus.CANCELLED),
            "result": result,
            "record": record.to_dict(),
        }

    def _task_status(self, run: TaskRun) -> str:
        if run.status in ("pending", "running") and run.id not in self._running:
            alive = owner_alive(run.owner)
            if run.owner == self.owner or alive is False:
                return "interrupted"
        return run.status

    def _task_view(self, run: TaskRun) -> dict[str, Any]:
        status = self._task_status(run)
        return {
            "run_id": run.id,
            "kind": "task",
            "status": status,
            "task_type": run.task_type,
            "request": run.request,
            "created_at": run.created_at,
            "finished_at": run.finished_at,
            "resumable": status in _RESUMABLE_TASK,
            "result": run.result,
            "error": run.error,
        }

    # -- resuming ------------------------------------------------------------------------

    def resume(self, run_id: str) -> str:
        """Continue an interrupted or cancelled run in the background; returns its kind."""
        try:
            self.engine.resumable(run_id)
        except NotFound:
            run = self.tasks.find(run_id)
            if run is None:
                raise
            if self._task_status(run) not in _RESUMABLE_TASK:
                raise StateError(
                    f'run "{run_id}" is {self._task_status(run)}; nothing to resume'
                ) from None
            self.start_task(run.request, run_id)
            return "task"
        record, _ = self.engine.resumable(run_id)
        if record.workflow.startswith(TASK_PREFIX):
            self._start(run_id, self._task_run(self._resume_task(run_id)))
            return "task"
        self._start(run_id, self._workflow(self.engine.resume(run_id)))
        return "workflow"

    async def _resume_task(self, run_id: str) -> dict[str, Any]:
        record = await self.engine.resume(run_id)
        return self.system.orchestrator.finish_task(record)
