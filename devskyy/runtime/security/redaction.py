"""No API key is stored with a run: a ``RunStore`` that redacts what it is given.

``RedactingRunStore`` wraps the store the workflow engine writes through (every run,
including orchestrator tasks, which run as workflows): run parameters, step outputs,
step and run errors pass through ``devskyy.core.keys.redact`` before they reach the
store, so a key typed into a parameter or found by a scan and put in an output is kept
as ``[redacted]``, and so is everything read back from it. Values without a key are
passed on as they are (no copy).
"""

from __future__ import annotations

import operator
from dataclasses import replace
from typing import Any

from devskyy.adapters.run_store import RunStore
from devskyy.core.keys import redact, redact_text
from devskyy.model.runs import RunPatch, RunRecord, RunWrite, StepEvent, StepRecord


def _text(value: str | None) -> str | None:
    return None if value is None else redact_text(value)


def _step(step: StepRecord) -> StepRecord:
    if step.output is None and step.error is None and step.reason is None:
        return step  # a step not yet run (every step of a new run): nothing to look at
    output, error, reason = redact(step.output), _text(step.error), _text(step.reason)
    if output is step.output and error == step.error and reason == step.reason:
        return step
    return replace(step, output=output, error=error, reason=reason)


def _event(event: StepEvent) -> StepEvent:
    error = _text(event.error)
    return event if error == event.error else replace(event, error=error)


def _patch(patch: RunPatch | None) -> RunPatch | None:
    if patch is None or patch.error is None:
        return patch
    error = redact_text(patch.error)
    return patch if error == patch.error else replace(patch, error=error)


class RedactingRunStore:
    """A ``RunStore`` that redacts API keys on the way in."""

    def __init__(self, inner: RunStore) -> None:
        self.inner = inner

    def create(self, run: RunRecord) -> RunRecord:
        params = redact(run.params)
        steps = tuple(_step(s) for s in run.steps)
        error = _text(run.error)
        return self.inner.create(replace(run, params=params, steps=steps, error=error))

    def write(self, batch: RunWrite) -> None:
        patch = _patch(batch.patch)
        steps = [_step(s) for s in batch.steps]
        events = [_event(e) for e in batch.events]
        unchanged = (
            patch is batch.patch
            and all(map(operator.is_, steps, batch.steps))
            and all(map(operator.is_, events, batch.events))
        )
        # The common batch holds no key: it is passed on as it came (no copy of it).
        self.inner.write(
            batch
            if unchanged
            else replace(batch, patch=patch, steps=tuple(steps), events=tuple(events))
        )

    def get(self, run_id: str) -> RunRecord:
        return self.inner.get(run_id)

    def list_runs(self, *, workflow: str | None = None, limit: int = 50) -> list[RunRecord]:
        return self.inner.list_runs(workflow=workflow, limit=limit)

    def count_by_status(self) -> dict[str, int]:
        return self.inner.count_by_status()

    def events(self, run_id: str) -> list[StepEvent]:
        return self.inner.events(run_id)

    def claim(
        self, run_id: str, *, expected_owner: str | None, owner: str, now: float
    ) -> int | None:
        return self.inner.claim(run_id, expected_owner=expected_owner, owner=owner, now=now)

    def take_over(self, run_id: str, *, generation: int, owner: str, now: float) -> int | None:
        return self.inner.take_over(run_id, generation=generation, owner=owner, now=now)

    def heartbeat(self, owner: str, now: float) -> int:
        return self.inner.heartbeat(owner, now)

    def active(self) -> list[RunRecord]:
        return self.inner.active()

    def __getattr__(self, name: str) -> Any:
        # Anything beyond the protocol (an implementation's extras) is the inner store's.
        return getattr(self.inner, name)
