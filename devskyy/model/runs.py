"""Frozen records of workflow runs: the run, each step's outcome, each attempt event.

These are the values the workflow engine writes to the run store as things happen and
the CLI and API read back. ``RunRecord.to_dict()`` is the one JSON shape of a run
(``devskyy run -o json``, ``devskyy runs show ID -o json``): ``id``, ``status``, and
``steps`` mapping each step name to its ``status``, ``attempts``, ``duration`` and
``output`` (plus timing and error details).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    """Where a run is. ``interrupted``: its process died while it was running."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        """True for outcomes that never change again."""
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class StepStatus(StrEnum):
    """Where a step is (dagster's ActiveExecution states, plus retry-wait)."""

    PENDING = "pending"
    READY = "ready"
    RUNNING = "running"
    RETRY_WAIT = "retry_wait"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def terminal(self) -> bool:
        """True once the step's outcome is final (succeeded, failed or skipped)."""
        return self in _TERMINAL


# Members as module constants for the per-step paths (the DAG's moves, the run session,
# the journal): on Python 3.11 reading ``StepStatus.X`` goes through the Enum metaclass's
# ``__getattr__`` hook (~70 ns a read, ~10x a global's).
PENDING, READY, RUNNING = StepStatus.PENDING, StepStatus.READY, StepStatus.RUNNING
RETRY_WAIT, SUCCEEDED = StepStatus.RETRY_WAIT, StepStatus.SUCCEEDED
FAILED, SKIPPED = StepStatus.FAILED, StepStatus.SKIPPED
_TERMINAL = frozenset({SUCCEEDED, FAILED, SKIPPED})


# StepEvent and StepRecord are built twice per step of every run (the per-step hot path,
# issue 12's bench_workflow): frozen for everyone, but built by a hand-written __init__
# that fills the instance dict directly, ~3.5x faster than a frozen dataclass's generated
# one (which goes through object.__setattr__ per field). Fields and defaults must match
# the __init__ (tests/test_run_records.py checks each class against dataclasses.fields).


@dataclass(frozen=True, init=False)
class StepEvent:
    """One thing that happened to a step: an attempt started, ended, or a skip.

    ``status`` is the step's status after the event: ``running`` (attempt started),
    ``retry_wait`` (the attempt failed, the next one is due at ``retry_at``),
    ``succeeded``, ``failed`` or ``skipped``. An event that ends an attempt carries the
    attempt's ``started_at``; the separate ``running`` event is only kept when the
    attempt was still running at a commit (group commit compacts the log), and an end that
    the step's record states exactly is stored as that record (``row_event``). ``worker``
    names where an ended attempt ran when a distributed runner ran it (address, host, pid).
    """

    step: str
    status: StepStatus
    attempt: int
    at: float
    error: str | None = None
    retry_at: float | None = None
    started_at: float | None = None
    worker: str | None = None

    def __init__(  # noqa: PLR0917 - the dataclass's own fields, in order
        self,
        step: str,
        status: StepStatus,
        attempt: int,
        at: float,
        error: str | None = None,
        retry_at: float | None = None,
        started_at: float | None = None,
        worker: str | None = None,
    ) -> None:
        d = self.__dict__
        d["step"] = step
        d["status"] = status
        d["attempt"] = attempt
        d["at"] = at
        d["error"] = error
        d["retry_at"] = retry_at
        d["started_at"] = started_at
        d["worker"] = worker


@dataclass(frozen=True, init=False)
class StepRecord:
    """The latest state of one step of a run."""

    name: str
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    duration: float | None = None
    output: dict[str, Any] | None = None
    error: str | None = None
    error_type: str | None = None
    reason: str | None = None

    def __init__(  # noqa: PLR0917 - the dataclass's own fields, in order
        self,
        name: str,
        status: StepStatus = StepStatus.PENDING,
        attempts: int = 0,
        started_at: float | None = None,
        finished_at: float | None = None,
        duration: float | None = None,
        output: dict[str, Any] | None = None,
        error: str | None = None,
        error_type: str | None = None,
        reason: str | None = None,
    ) -> None:
        d = self.__dict__
        d["name"] = name
        d["status"] = status
        d["attempts"] = attempts
        d["started_at"] = started_at
        d["finished_at"] = finished_at
        d["duration"] = duration
        d["output"] = output
        d["error"] = error
        d["error_type"] = error_type
        d["reason"] = reason

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of a step inside a run record."""
        return {
            "status": self.status.value,
            "attempts": self.attempts,
            "duration": self.duration,
            "output": self.output,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "error_type": self.error_type,
            "reason": self.reason,
        }


@dataclass(frozen=True, repr=False)
class RunRecord:
    """One run of a workflow. ``steps`` keeps the workflow's step order."""

    id: str
    workflow: str
    params: dict[str, Any] = field(default_factory=dict)
    status: RunStatus = RunStatus.PENDING
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    owner: str | None = None
    heartbeat_at: float | None = None
    steps: tuple[StepRecord, ...] = ()
    # Raised by every claim and take-over: a write is refused unless it carries the
    # generation its driver claimed (fencing a stale owner).
    generation: int = 0

    def __repr__(self) -> str:
        # Compact on purpose: asyncio reprs a finished task's result (Python 3.11's
        # asyncio.run does, via signal.getsignal), and a 1,000-step run must stay cheap.
        shown = ", ".join(f"{s.name}={s.status.value}" for s in self.steps[:20])
        more = f", +{len(self.steps) - 20} more" if len(self.steps) > 20 else ""
        return (
            f"RunRecord(id={self.id!r}, workflow={self.workflow!r}, "
            f"status={self.status.value!r}, error={self.error!r}, steps=[{shown}{more}])"
        )

    def step(self, name: str) -> StepRecord:
        """The record of one step; ``KeyError`` when the workflow has no such step."""
        for record in self.steps:
            if record.name == name:
                return record
        raise KeyError(name)

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish, once finished."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def with_status(self, status: RunStatus) -> RunRecord:
        """A copy with another status (used to show a dead ``running`` run as interrupted)."""
        return replace(self, status=status)

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of a run (the shape ``-o json`` prints)."""
        return {
            "id": self.id,
            "workflow": self.workflow,
            "params": self.params,
            "status": self.status.value,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration": self.duration,
            "error": self.error,
            "owner": self.owner,
            "steps": {s.name: s.to_dict() for s in self.steps},
        }


@dataclass(frozen=True)
class RunPatch:
    """Fields of a run to change; ``None`` leaves a field as it is."""

    status: RunStatus | None = None
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    owner: str | None = None
    heartbeat_at: float | None = None

    def apply(self, run: RunRecord) -> RunRecord:
        """The run with this patch applied (steps untouched)."""
        changes = {
            name: value
            for name in ("status", "started_at", "finished_at", "error", "owner", "heartbeat_at")
            if (value := getattr(self, name)) is not None
        }
        return replace(run, **changes)


@dataclass(frozen=True)
class RunWrite:
    """One durable write: a run patch, new step states and events, in one transaction."""

    run_id: str
    patch: RunPatch | None = None
    steps: tuple[StepRecord, ...] = ()
    events: tuple[StepEvent, ...] = ()
    generation: int | None = None
    """The owner generation the writer holds; the store refuses the write on another."""
    row_events: frozenset[str] = frozenset()
    """Steps of ``steps`` whose row stands for their end event (``ended_by_row``): that
    event is not in ``events``; the store marks the rows and readers put the events back
    (``with_row_events``)."""


# A step's end event that its own record states exactly is not written as an event row:
# the step's row stands for it (one row per step instead of two for every step that ends
# in its first attempt, the common case). A step's row is final once the step is
# (terminal steps never change again), so the event it stands for never changes either.


def row_event(step: StepRecord) -> StepEvent:
    """The end event a finished step's row stands for: its status, attempts, finish time,
    error (or, without one, its reason) and start, on no named worker."""
    assert step.finished_at is not None  # a step ends with a finish time
    return StepEvent(
        step.name,
        step.status,
        step.attempts,
        step.finished_at,
        step.error or step.reason,
        None,
        step.started_at,
        None,
    )


def ended_by_row(step: StepRecord, event: StepEvent) -> bool:
    """Whether ``event`` ends ``step`` and is exactly ``row_event(step)`` (so its row can
    stand for it). Field by field, without building the event: called per step."""
    return (
        event.status is step.status
        and event.status in _TERMINAL
        and event.at == step.finished_at
        and event.attempt == step.attempts
        and event.started_at == step.started_at
        and event.error == (step.error or step.reason)
        and event.retry_at is None
        and event.worker is None
        and event.step == step.name
    )


def with_row_events(stored: list[StepEvent], rows: Iterable[StepRecord]) -> list[StepEvent]:
    """A run's event log: the ``stored`` event rows (in their order) with the end events
    that the step ``rows`` stand for, each placed by time: before the first stored event
    that did not happen earlier (an end comes before what starts at the same instant: a
    dependent starts when its needs end), never before a stored event of its own step (a
    step's end is its last event). ``rows`` come in plan order."""
    implied = sorted((row_event(s) for s in rows), key=lambda e: e.at)  # stable
    if not implied:
        return stored
    own_last = {e.step: i for i, e in enumerate(stored)}
    merged: list[StepEvent] = []
    j = 0
    for i, event in enumerate(stored):
        while (
            j < len(implied) and implied[j].at <= event.at and own_last.get(implied[j].step, -1) < i
        ):
            merged.append(implied[j])
            j += 1
        merged.append(event)
    merged.extend(implied[j:])
    return merged
