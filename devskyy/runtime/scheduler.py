"""The scheduler: fires the ``spec.schedules`` of applied Workflows, from the leading daemon.

Only the watch daemon that holds the store's lease runs a ``Scheduler`` (docs/scaling.md):
``tick()`` reads the applied workflows, asks ``core.schedules.decide`` what each schedule
must do now, records the answer in ``schedule_fires`` in ONE transaction fenced by the
lease, and only then creates and starts the run (through the one execution path,
``WorkflowEngine.execute``). So:

* a due time is recorded at most once (the table's key), by the leader only (the fence);
* a run is started only for a recorded fire, under the id the fire names; a daemon killed
  between the record and the run's creation leaves a fire without its run, which the next
  leader's ``tick`` creates and starts (``repaired``): each due time runs once, not zero;
* ``Replace`` cancels the runs this process started for the schedule (a run started by a
  dead leader is already interrupted, and counts as finished).

``next_due()`` is the wall time of the earliest next fire; the daemon sleeps until then
(on its clock seam) unless a hint or the resync wakes it first.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any

from devskyy.adapters.schedule_store import Fire, ScheduleStore
from devskyy.core import schedules as core
from devskyy.core.timefmt import rfc3339
from devskyy.errors import DevskyyError, NotFound
from devskyy.model.manifests import ScheduleSpec, Workflow
from devskyy.model.runs import RunStatus
from devskyy.runtime.background import BackgroundTasks
from devskyy.runtime.live import LiveView
from devskyy.runtime.workflows import WorkflowEngine, effective_status, validate_params

log = logging.getLogger("devskyy.schedules")

_RUNNING = (RunStatus.PENDING, RunStatus.RUNNING)


@dataclass(frozen=True)
class Fired:
    """What one tick recorded for one schedule (for logs and tests)."""

    workflow: str
    schedule: str
    due_at: float
    status: str
    run_id: str | None = None
    reason: str = ""


class Scheduler:
    """Fire due schedules: record first, then run."""

    def __init__(
        self,
        live: LiveView,
        engine: WorkflowEngine,
        store: ScheduleStore,
        background: BackgroundTasks,
        *,
        fence: Any = None,
    ) -> None:
        self.live = live
        self.engine = engine
        self.store = store
        self.background = background
        self.fence = fence  # DaemonLease.fence: only the leader records
        self.clock = engine.clock
        self.started: dict[str, asyncio.Task[Any]] = {}  # run id -> its task (Replace)

    def _schedules(self) -> list[tuple[Workflow, ScheduleSpec]]:
        workflows = self.live.current().workflows
        return [(wf, s) for _, wf in sorted(workflows.items()) for s in wf.spec.schedules]

    def next_due(self, since: float | None = None) -> float | None:
        """The wall time (epoch seconds) of the earliest fire after ``since`` (default now),
        or None without any. The daemon passes the time its last tick started, so a due
        time that came while that tick ran wakes it at once instead of being superseded."""
        now = self.clock.now() if since is None else since
        times = []
        for workflow, schedule in self._schedules():
            try:
                times.append(core.next_fire(schedule.cron, schedule.timezone, now))
            except (ValueError, LookupError, OSError) as exc:  # bad cron or zone in the store
                _bad(workflow, exc)
        return min(times, default=None)

    async def tick(self) -> list[Fired]:
        """Record and start what is due now; returns what was recorded."""
        out: list[Fired] = []
        seen: set[tuple[str, str]] = set()
        for workflow, schedule in self._schedules():
            key = core.schedule_key(schedule)
            if (workflow.name, key) in seen:
                continue  # the same schedule written twice fires once
            seen.add((workflow.name, key))
            try:
                out += await asyncio.to_thread(self._one, workflow, schedule, key)
            except (ValueError, LookupError, OSError) as exc:
                _bad(workflow, exc)  # one bad schedule must not stop the others
        for fired in out:
            if fired.run_id is not None and fired.status in ("fired", "replaced", "repaired"):
                task = self.background.start(
                    self._run(fired.run_id), name=f"schedule {fired.workflow}"
                )
                self.started[fired.run_id] = task
                task.add_done_callback(functools.partial(self._forget, fired.run_id))
        return out

    def _forget(self, run_id: str, task: asyncio.Task[Any]) -> None:
        if self.started.get(run_id) is task:
            del self.started[run_id]

    def _one(self, workflow: Workflow, schedule: ScheduleSpec, key: str) -> list[Fired]:
        now = self.clock.now()
        recent = self.store.recent(workflow.name, key)
        out: list[Fired] = []
        active: list[str] = []
        for fire in recent:
            if fire.run_id is None or fire.status not in ("fired", "replaced"):
                continue
            try:
                record = self.engine.store.get(fire.run_id)
            except NotFound:
                # Recorded, then the daemon died before creating the run: create it now.
                if self._create(workflow, schedule, fire.run_id) is None:
                    out.append(Fired(workflow.name, key, fire.due_at, "repaired", fire.run_id))
                    active.append(fire.run_id)
                continue
            if effective_status(record, now) in _RUNNING:
                active.append(fire.run_id)
        pending = core.Pending(recent[0].due_at if recent else None, tuple(active))
        decision = core.decide(schedule, pending, now)
        rows: list[Fire] = []
        if decision.arm_at is not None:
            rows.append(self._row(workflow, schedule, key, decision.arm_at, "armed", None, ""))
        for entry in decision.entries:
            rows.append(
                self._row(workflow, schedule, key, entry.due, entry.status, None, entry.reason)
            )
        run_id: str | None = None
        params: dict[str, Any] = {}
        if decision.fire is not None:
            due = decision.fire
            try:
                params = validate_params(workflow, schedule.params)
            except DevskyyError as exc:  # validation refuses these; a store edited by hand may not
                rows.append(self._row(workflow, schedule, key, due.due, "skipped", None, str(exc)))
            else:
                run_id = self.engine.new_id()
                rows.append(
                    self._row(workflow, schedule, key, due.due, due.status, run_id, due.reason)
                )
        if not rows:
            return out
        if not self.store.record(rows, self.fence):
            log.info(
                "schedule already recorded by another daemon",
                extra={"fields": {"workflow": workflow.name, "schedule": key}},
            )
            return out
        if decision.dropped:
            log.warning(
                f"more than {core.MAX_PENDING} due times since the last record; older ones "
                "are not listed",
                extra={"fields": {"workflow": workflow.name, "schedule": key}},
            )
        for row in rows:
            if row.status == "armed":
                continue
            out.append(Fired(workflow.name, key, row.due_at, row.status, row.run_id, row.reason))
            log.info(
                f"schedule {row.status}: {workflow.name} at {rfc3339(row.due_at)}",
                extra={"fields": {"run_id": row.run_id, "reason": row.reason}},
            )
        for run in decision.cancel:
            task = self.started.get(run)
            if task is not None:
                task.get_loop().call_soon_threadsafe(task.cancel)
        if run_id is not None:  # its params were validated above
            self.engine.create_run(workflow, workflow.name, params, run_id=run_id)
        return out

    def _create(self, workflow: Workflow, schedule: ScheduleSpec, run_id: str) -> str | None:
        """Record the pending run a fire names (its id chosen before the fire was recorded)."""
        try:
            params = validate_params(workflow, schedule.params)
        except DevskyyError as exc:
            return str(exc)
        self.engine.create_run(workflow, workflow.name, params, run_id=run_id)
        return None

    async def _run(self, run_id: str) -> None:
        try:
            await self.engine.execute(run_id)
        except asyncio.CancelledError:
            raise
        except Exception:  # the run records its own failure; the daemon goes on
            log.exception("scheduled run failed", extra={"fields": {"run_id": run_id}})

    def _row(  # noqa: PLR0917 - one row's columns, in the table's order
        self,
        workflow: Workflow,
        schedule: ScheduleSpec,
        key: str,
        due: float,
        status: str,
        run_id: str | None,
        reason: str,
    ) -> Fire:
        return Fire(
            workflow=workflow.name,
            schedule=key,
            due_at=due,
            status=str(status),
            run_id=run_id,
            reason=reason,
            cron=schedule.cron,
            timezone=schedule.timezone,
            recorded_at=self.clock.now(),
        )


def _bad(workflow: Workflow, exc: Exception) -> None:
    # Validation refuses these; a store written by an older devskyy or by hand may hold one.
    log.error(
        "schedule cannot be computed; skipped",
        extra={"fields": {"workflow": workflow.name, "error": f"{type(exc).__name__}: {exc}"}},
    )


__all__ = ["Fired", "Scheduler"]
