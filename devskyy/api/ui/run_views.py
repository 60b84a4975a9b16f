"""What the runs pages show: the filtered list, a run (DAG, steps, timeline, I/O), a task.

Translation only, like ``views``: from the run store, the task runs and the applied
workflow. The live view's JSON (``run_state``) is the same shape the page starts from.
Parameters, inputs, outputs and errors show server paths as the API's answers do
(``api/paths_out.py``: workspace-relative, else ``<server path>``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devskyy.adapters.ui_queries import run_page, workflow_names
from devskyy.api.ui.access import RESUME, RUN, Viewer
from devskyy.api.ui.svg import graph_svg
from devskyy.api.ui.views import applied_workflow, live, pretty, seconds, when
from devskyy.errors import NotFound
from devskyy.model.runs import RunRecord, RunStatus, StepEvent, StepStatus
from devskyy.runtime.workflows import effective_status

if TYPE_CHECKING:
    from devskyy.api.context import ApiContext

PAGE_SIZE = 50
LIVE_POLL_SECONDS = 0.25
"""How often the live view of a run re-reads the store."""
LIVE_STREAM_SECONDS = 10.0
"""One event stream's longest life; the browser reconnects (so a stopping server is
never held up by an open stream for long)."""
STATUS_FILTERS = tuple(s.value for s in RunStatus)


def runs_list(
    ctx: ApiContext, viewer: Viewer, workflow: str | None, status: str | None, page: int
) -> dict[str, Any]:
    """A page of runs newest first, filtered by workflow and (effective) status."""
    stored: tuple[str, ...] = ()
    if status == RunStatus.INTERRUPTED.value:
        # Stored as running/pending; whether its owner is gone is decided per run below.
        stored = (RunStatus.RUNNING.value, RunStatus.PENDING.value, status)
    elif status:
        stored = (status,)
    found = run_page(
        ctx.system.engine,
        workflow=workflow or None,
        statuses=stored,
        limit=PAGE_SIZE,
        offset=page * PAGE_SIZE,
    )
    now = ctx.system.clock.now()
    rows = []
    for line in found.lines:
        shown = effective_status(line.run, now).value
        if status and shown != status:
            continue
        if not viewer.may_fill(RUN, run_id=line.run.id):
            continue
        rows.append(
            {
                "id": line.run.id,
                "workflow": line.run.workflow,
                "status": shown,
                "created": when(line.run.created_at),
                "duration": seconds(line.run.duration),
                "progress": f"{line.steps_done}/{line.steps_total}",
            }
        )
    applied = [w.metadata.name for w in live(ctx).workflows]
    return {
        "rows": rows,
        "total": found.total,
        "page": page,
        "pages": max(1, -(-found.total // PAGE_SIZE)),
        "workflows": sorted(set(applied) | set(workflow_names(ctx.system.engine))),
        "statuses": STATUS_FILTERS,
        "workflow": workflow or "",
        "status": status or "",
    }


@dataclass
class _Attempt:
    step: str
    attempt: int
    start: float | None
    end: float | None = None
    outcome: str = "running"
    error: str | None = None
    retry_at: float | None = None
    worker: str | None = None

    def shown(self) -> dict[str, Any]:
        skipped = self.outcome == StepStatus.SKIPPED.value  # a decision, not an attempt
        duration = "—"
        if self.start is not None and self.end is not None and not skipped:
            duration = seconds(self.end - self.start)
        return {
            "step": self.step,
            "attempt": self.attempt,
            "started": when(self.start),
            "duration": duration,
            "outcome": self.outcome,
            "error": self.error,
            "retry": when(self.retry_at) if self.retry_at else None,
            "worker": self.worker or ("—" if skipped else "in-process"),
        }


def attempts(events: list[StepEvent]) -> list[dict[str, Any]]:
    """The timeline: one line per attempt (start, duration, outcome, worker) and each skip.

    An attempt's end event carries its start; a separate ``running`` event exists only
    for an attempt still running at a commit. ``worker`` is shown when a distributed
    runner recorded one on the event (the in-process runner records none).
    """
    lines: list[_Attempt] = []
    running: dict[tuple[str, int], _Attempt] = {}
    for event in events:
        slot = (event.step, event.attempt)
        worker = getattr(event, "worker", None)
        if event.status is StepStatus.RUNNING:
            running[slot] = line = _Attempt(event.step, event.attempt, event.at, worker=worker)
            lines.append(line)
            continue
        found = running.pop(slot, None)
        if found is None:
            start = event.at if event.status is StepStatus.SKIPPED else event.started_at
            found = _Attempt(event.step, event.attempt, start)
            lines.append(found)
        found.end, found.outcome, found.error = event.at, event.status.value, event.error
        found.retry_at = event.retry_at
        found.worker = found.worker or worker
    return [line.shown() for line in lines]


def step_edges(ctx: ApiContext, record: RunRecord) -> list[tuple[str, str]]:
    """The run's DAG edges from its workflow as applied (none if no longer applied)."""
    workflow = applied_workflow(ctx, record.workflow)
    if workflow is None:
        return []
    names = {s.name for s in record.steps}
    return [
        (need, s.name)
        for s in workflow.spec.steps
        for need in s.needs
        if s.name in names and need in names
    ]


def run_state(ctx: ApiContext, record: RunRecord) -> dict[str, Any]:
    """What the live view needs: status and each step's state and attempts (JSON)."""
    status = effective_status(record, ctx.system.clock.now())
    return {
        "id": record.id,
        "status": status.value,
        "finished": status.finished,
        "steps": {
            s.name: {
                "status": s.status.value,
                "attempts": s.attempts,
                "duration": seconds(s.duration),
            }
            for s in record.steps
        },
    }


def run_page_data(ctx: ApiContext, viewer: Viewer, record: RunRecord) -> dict[str, Any]:
    """The run page: DAG by step state, steps, timeline, inputs and outputs, resume."""
    state = run_state(ctx, record)
    states = {name: s["status"] for name, s in state["steps"].items()}
    workflow = applied_workflow(ctx, record.workflow)
    paths = ctx.paths
    inputs = {s.name: paths.shown(s.input) for s in workflow.spec.steps} if workflow else {}
    status = RunStatus(state["status"])
    shown = paths.shown(record.to_dict())
    steps = shown["steps"]
    return {
        "run": dataclasses.replace(record, error=shown["error"]),
        "state": state,
        "status": status.value,
        "created": when(record.created_at),
        "started": when(record.started_at),
        "finished": when(record.finished_at),
        "duration": seconds(record.duration),
        "svg": graph_svg(
            f"Run {record.id} of {record.workflow}",
            [s.name for s in record.steps],
            step_edges(ctx, record),
            states,
        ),
        "steps": [
            {
                "name": s.name,
                "status": s.status.value,
                "attempts": s.attempts,
                "duration": seconds(s.duration),
                "error": steps[s.name]["error"],
                "reason": steps[s.name]["reason"],
                "input": pretty(inputs[s.name]) if s.name in inputs else None,
                "output": None if s.output is None else pretty(steps[s.name]["output"]),
            }
            for s in record.steps
        ],
        "params": pretty(shown["params"]),
        "timeline": paths.shown(attempts(ctx.runs.engine.store.events(record.id))),
        "live": not status.finished and status is not RunStatus.INTERRUPTED,
        "can_resume": status in (RunStatus.INTERRUPTED, RunStatus.CANCELLED)
        and viewer.may_fill(RESUME, run_id=record.id),
    }


def task_page_data(ctx: ApiContext, viewer: Viewer, run_id: str) -> dict[str, Any]:
    """An orchestrator task's page: its request, status, result or error, and resume.

    ``NotFound`` when no task has that id either.
    """
    view = ctx.runs.view(run_id)
    return {
        "task": view,
        "status": view["status"],
        "created": when(view["created_at"]),
        "finished": when(view["finished_at"]),
        "request": pretty(view["request"]),
        "result": None if view["result"] is None else pretty(view["result"]),
        "can_resume": view["resumable"] and viewer.may_fill(RESUME, run_id=run_id),
    }


async def live_events(ctx: ApiContext, run_id: str) -> AsyncIterator[str]:
    """Server-sent events: the run's state whenever it changes, then ``end``."""
    clock = ctx.system.clock
    started = clock.monotonic()
    last = None
    yield "retry: 1000\n\n"
    while True:
        try:
            record = ctx.runs.engine.store.get(run_id)
        except NotFound:
            yield "event: end\ndata: {}\n\n"
            return
        state = run_state(ctx, record)
        text = json.dumps(state, separators=(",", ":"))
        if text != last:
            yield f"event: state\ndata: {text}\n\n"
            last = text
        if state["finished"] or state["status"] == "interrupted":
            yield "event: end\ndata: {}\n\n"
            return
        if clock.monotonic() - started > LIVE_STREAM_SECONDS:
            return
        await clock.sleep(LIVE_POLL_SECONDS)
