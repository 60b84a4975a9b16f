"""Runs outlive their server: heartbeats for the runs this process owns, take-over of the rest.

Every process that drives runs (``devskyy serve``) keeps one loop: each ``interval`` it
renews ``heartbeat_at`` of every running or pending run it owns (one statement), then
looks at the other active runs and takes over those whose owner is gone, by the rule of
``effective_status``: on this host the owner's pid is dead; on another host its heartbeat
is older than ``stale_after``. The take-over is a conditional write on the run's owner
generation, so of several survivors exactly one wins each run, and the old owner, were it
only paused, finds its next write refused (``RunFenced``) and stops. The winner continues
the run in the background, from its recorded events: succeeded steps are not run again.
API-started, scheduled and CLI runs are alike here; they are all rows of the run store.

``stale_after`` must exceed the heartbeat interval of every owner that may run on another
host (4 x by default; the engine heartbeats a waiting run every 30 s on its own).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from devskyy.adapters.clock import Clock
from devskyy.errors import DevskyyError
from devskyy.model.runs import RunRecord, RunStatus
from devskyy.runtime.workflows import STALE_AFTER, WorkflowEngine, effective_status

log = logging.getLogger("devskyy.runs")

Start = Callable[..., "asyncio.Task[object]"]


@dataclass(frozen=True)
class TakeoverPolicy:
    """How often an owner heartbeats and when a run's owner counts as gone."""

    stale_after: float = STALE_AFTER

    @property
    def interval(self) -> float:
        """Heartbeats every quarter of ``stale_after``: three may be missed."""
        return self.stale_after / 4


class RunKeeper:
    """Heartbeats this process's runs and takes over runs whose owner died."""

    def __init__(
        self,
        engine: Callable[[], WorkflowEngine],
        clock: Clock,
        start: Callable[..., object],
        policy: TakeoverPolicy | None = None,
    ) -> None:
        self._engine = engine
        self.clock = clock
        self._start = start
        self.policy = policy or TakeoverPolicy()
        self.taken: list[str] = []

    def orphans(self) -> list[RunRecord]:
        """Active runs of other owners that are gone (dead pid here, stale heartbeat elsewhere)."""
        engine = self._engine()
        now = self.clock.now()
        return [
            run
            for run in engine.store.active()
            if run.owner != engine.owner
            and effective_status(run, now, stale_after=self.policy.stale_after)
            is RunStatus.INTERRUPTED
        ]

    def tick(self) -> list[str]:
        """One round: heartbeat ours, start a take-over of every orphan; the runs started."""
        engine = self._engine()
        engine.store.heartbeat(engine.owner, self.clock.now())
        started: list[str] = []
        for run in self.orphans():
            self._start(self._take(engine, run), name=f"takeover-{run.id}")
            started.append(run.id)
        return started

    async def _take(self, engine: WorkflowEngine, run: RunRecord) -> None:
        try:
            done = await engine.take_over(run)
        except DevskyyError as exc:  # another owner fenced us, or the workflow changed
            log.warning(
                f'run "{run.id}" take-over stopped: {exc}',
                extra={"fields": {"run": run.id, "error": str(exc)}},
            )
            return
        if done is None:
            return  # another survivor won it
        self.taken.append(run.id)
        log.info(
            f'run "{run.id}" taken over from {run.owner}: {done.status.value}',
            extra={
                "fields": {
                    "run": run.id,
                    "previous_owner": run.owner,
                    "owner": engine.owner,
                    "generation": run.generation + 1,
                    "status": done.status.value,
                }
            },
        )

    async def keep(self) -> None:
        """Tick every ``interval`` until cancelled; a failed round is logged and retried."""
        while True:
            try:
                self.tick()
            except DevskyyError as exc:  # the store is away for a moment: next round
                log.warning(f"run keeper: {exc}", extra={"fields": {"error": str(exc)}})
            await self.clock.sleep(self.policy.interval)
