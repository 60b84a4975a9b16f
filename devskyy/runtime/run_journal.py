"""The pending effects of a run session, and the one place they are applied.

A run session (``workflow_execution``) computes transitions; each becomes a step record,
a step event and/or a run patch noted here. ``apply`` is THE place effects happen: it
commits everything noted since the last commit in one transaction (``RunStore.write``,
fenced by the run's owner generation), then tells the progress listener of each step
change in order. A listener that raises becomes ``ProgressListenerError`` (the session
fails the run with it). An attempt that started and ended within one batch is written as
one event row (its end event carries ``started_at``), and a step's end event that its own
record states exactly is no row at all: the step's row stands for it (``ended_by_row``,
``RunWrite.row_events``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from devskyy.adapters.clock import Clock
from devskyy.adapters.run_store import RunStore
from devskyy.model.runs import (
    RUNNING,
    RunPatch,
    RunRecord,
    RunWrite,
    StepEvent,
    StepRecord,
    ended_by_row,
)
from devskyy.runtime.run_services import ProgressListener, ProgressListenerError


class RunJournal:
    """Step records, events and a run patch waiting for the next commit."""

    def __init__(self, store: RunStore, clock: Clock, on_step: ProgressListener | None) -> None:
        self.store = store
        self.clock = clock
        self.on_step = on_step
        self.dirty: dict[str, StepRecord] = {}
        # In order; None where a running event was, whose attempt ended in the same batch.
        self.events: list[StepEvent | None] = []
        # Per step, where its running event waits in ``events`` (and its attempt).
        self.running: dict[str, tuple[int, int]] = {}
        self.patch: RunPatch | None = None
        # Steps whose row stands for their end event in this batch (no event row).
        self.row_events: set[str] = set()
        self.notices: list[StepRecord] = []
        self.flushed_at = clock.monotonic()

    def step(self, record: StepRecord, event: StepEvent | None) -> None:
        """Note a step's new record (and its event); the listener hears of it on apply."""
        self.dirty[record.name] = record
        if event is not None:
            events = self.events
            if event.status is RUNNING:
                self.running[event.step] = (len(events), event.attempt)
            else:
                started = self.running.pop(event.step, None)
                if started is not None and started[1] == event.attempt:
                    # The attempt started and ended within this batch: one row, the end
                    # event (it carries started_at).
                    events[started[0]] = None
                if ended_by_row(record, event):
                    self.row_events.add(record.name)  # the step's row stands for it
                    event = None
            if event is not None:
                events.append(event)
        if self.on_step is not None:
            self.notices.append(record)

    def run_patch(self, patch: RunPatch) -> None:
        """Merge run fields into the pending write (a later value wins per field)."""
        self.patch = patch if self.patch is None else replace(self.patch, **_set_fields(patch))

    def apply(self, run: RunRecord, commit: bool = True) -> None:
        """Commit what changed (unless ``commit`` is False), then tell the listener."""
        if commit:
            self.flush(run)
        if not self.notices or self.on_step is None:
            return
        notices, self.notices = self.notices, []
        for record in notices:
            try:
                self.on_step(run, record)
            except Exception as exc:
                raise ProgressListenerError(
                    f"progress listener failed: {type(exc).__name__}: {exc}"
                ) from exc

    def flush(self, run: RunRecord) -> None:
        """Write everything changed since the last flush in one transaction."""
        if not (self.dirty or self.events or self.patch):
            return
        batch = RunWrite(
            run.id,
            self.patch,
            tuple(self.dirty.values()),
            tuple([e for e in self.events if e is not None]),
            run.generation,  # fenced: refused once another owner took the run
            frozenset(self.row_events),
        )
        self.store.write(batch)
        self.flushed_at = self.clock.monotonic()
        self.dirty = {}
        self.events = []
        self.running = {}
        self.row_events = set()
        self.patch = None


def _set_fields(patch: RunPatch) -> dict[str, Any]:
    return {k: v for k, v in vars(patch).items() if v is not None}
