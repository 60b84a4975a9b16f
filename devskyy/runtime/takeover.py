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

The keeper shares the event loop of the API server (uvicorn) or the watch daemon, and the
store is synchronous: the blocking half of a round (the heartbeat write and the read of the
active runs) runs in a worker thread (``asyncio.to_thread``), so a slow PostgreSQL holds up
only the keeper, not every request. The store must allow that: ``SqlRunStore`` takes a
pooled connection per call (SQLAlchemy's pool hands each thread its own; a file SQLite
pool is not bound to the thread that opened it), as the scheduler's and the daemon
lease's calls do. Only the take-overs are started on the loop, one task per run.
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
        # Runs whose take-over task has not ended: a later round must not start another
        # (the conditional write would refuse it, but only after a second store round).
        self._taking: set[str] = set()

    async def orphans(self) -> list[RunRecord]:
        """Active runs of other owners that are gone (dead pid here, stale heartbeat elsewhere)."""
        engine = self._engine()
        return await asyncio.to_thread(self._orphans, engine, self.clock.now())

    def _orphans(self, engine: WorkflowEngine, now: float) -> list[RunRecord]:
        """Blocking (a worker thread): the orphans among the store's active runs at ``now``."""
        return [
            run
            for run in engine.store.active()
            if run.owner != engine.owner
            and effective_status(run, now, stale_after=self.policy.stale_after)
            is RunStatus.INTERRUPTED
        ]

    def _survey(self, engine: WorkflowEngine, now: float) -> list[RunRecord]:
        """Blocking (a worker thread): heartbeat our runs, then read the orphans."""
        engine.store.heartbeat(engine.owner, now)
        return self._orphans(engine, now)

    async def tick(self) -> list[str]:
        """One round: heartbeat ours, start a take-over of every orphan; the runs started.

        The store's work runs in a worker thread; the loop goes on serving meanwhile.
        ``now`` is read once, before it: the heartbeat and the staleness rule see one time.
        """
        engine = self._engine()
        orphans = await asyncio.to_thread(self._survey, engine, self.clock.now())
        started: list[str] = []
        for run in orphans:
            if run.id in self._taking:
                continue  # its take-over is under way
            self._taking.add(run.id)
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
        finally:
            self._taking.discard(run.id)
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
                await self.tick()
            except DevskyyError as exc:  # the store is away for a moment: next round
                log.warning(f"run keeper: {exc}", extra={"fields": {"error": str(exc)}})
            except Exception as exc:  # crash-only: a driver's error must not end the loop
                # The driver's first line (no SQL): what failed, not the statement.
                reason = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
                log.error(f"run keeper: {reason}; retrying", extra={"fields": {"error": reason}})
            await self.clock.sleep(self.policy.interval)
