"""A step's row standing for its end event (``model.runs``: ``row_event``,
``ended_by_row``, ``with_row_events``) and the journal's choice of it (``RunJournal``)."""

from __future__ import annotations

import pytest

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.run_store import MemoryRunStore
from devskyy.model.runs import (
    RunRecord,
    RunWrite,
    StepEvent,
    StepRecord,
    StepStatus,
    ended_by_row,
    row_event,
    with_row_events,
)
from devskyy.runtime.run_journal import RunJournal

S = StepStatus
DONE = StepRecord("a", S.SUCCEEDED, 1, 10.0, 12.0, 2.0, output={"x": 1})


@pytest.mark.parametrize(
    ("step", "event", "expected"),
    [
        (DONE, StepEvent("a", S.SUCCEEDED, 1, 12.0, started_at=10.0), True),
        # A second attempt started later than the step: its start is the event's own.
        (
            StepRecord("a", S.SUCCEEDED, 2, 10.0, 15.0, 5.0),
            StepEvent("a", S.SUCCEEDED, 2, 15.0, started_at=13.0),
            False,
        ),
        (DONE, StepEvent("a", S.SUCCEEDED, 1, 12.0, started_at=10.0, worker="w:1"), False),
        (DONE, StepEvent("a", S.SUCCEEDED, 1, 12.5, started_at=10.0), False),
        (DONE, StepEvent("b", S.SUCCEEDED, 1, 12.0, started_at=10.0), False),
        (
            StepRecord("a", S.FAILED, 1, 10.0, 12.0, 2.0, error="boom", error_type="E"),
            StepEvent("a", S.FAILED, 1, 12.0, error="boom", started_at=10.0),
            True,
        ),
        (
            StepRecord("a", S.SKIPPED, finished_at=3.0, reason="when is false: x"),
            StepEvent("a", S.SKIPPED, 0, 3.0, error="when is false: x"),
            True,
        ),
        (
            StepRecord("a", S.RETRY_WAIT, 1, 10.0, 12.0, error="flaky"),
            StepEvent("a", S.RETRY_WAIT, 1, 12.0, error="flaky", started_at=10.0),
            False,  # not an end: more events follow
        ),
    ],
)
def test_ended_by_row_is_exactly_the_event_the_row_gives(
    step: StepRecord, event: StepEvent, expected: bool
) -> None:
    assert ended_by_row(step, event) is expected
    if step.status.terminal and step.finished_at is not None:
        assert (row_event(step) == event) is expected


def test_the_log_puts_each_end_by_time_and_after_its_own_steps_events() -> None:
    stored = [StepEvent("slow", S.RUNNING, 1, 1.0), StepEvent("late", S.RUNNING, 1, 5.0)]
    rows = [
        StepRecord("fast", S.SUCCEEDED, 1, 2.0, 3.0),
        StepRecord("slow", S.SUCCEEDED, 1, 1.0, 6.0),
        StepRecord("tie", S.SUCCEEDED, 1, 4.0, 5.0),
    ]
    assert [(e.step, e.status.value, e.at) for e in with_row_events(stored, rows)] == [
        ("slow", "running", 1.0),
        ("fast", "succeeded", 3.0),
        ("tie", "succeeded", 5.0),  # an end before a start at the same instant
        ("late", "running", 5.0),
        ("slow", "succeeded", 6.0),
    ]
    # A clock that went back: a step's end never comes before its own stored events.
    back = [StepEvent("a", S.RUNNING, 1, 9.0)]
    ended = [StepRecord("a", S.SUCCEEDED, 1, 9.0, 8.0)]
    assert [e.status for e in with_row_events(back, ended)] == [S.RUNNING, S.SUCCEEDED]
    assert with_row_events(stored, []) == stored


def _journal() -> tuple[RunJournal, list[RunWrite]]:
    written: list[RunWrite] = []

    class Recording(MemoryRunStore):
        def write(self, batch: RunWrite) -> None:
            written.append(batch)

    return RunJournal(Recording(), FakeClock(), None), written


def test_the_journal_writes_no_event_row_for_an_end_its_row_states() -> None:
    journal, written = _journal()
    run = RunRecord("r", "wf")
    journal.step(StepRecord("a", S.RUNNING, 1, 10.0), StepEvent("a", S.RUNNING, 1, 10.0))
    journal.step(DONE, StepEvent("a", S.SUCCEEDED, 1, 12.0, started_at=10.0))
    # A retried step: its attempt's start is not the step's, so its end stays a row.
    journal.step(
        StepRecord("b", S.SUCCEEDED, 2, 10.0, 15.0),
        StepEvent("b", S.SUCCEEDED, 2, 15.0, started_at=13.0),
    )
    journal.flush(run)
    (batch,) = written
    assert batch.row_events == frozenset({"a"})
    assert batch.events == (StepEvent("b", S.SUCCEEDED, 2, 15.0, started_at=13.0),)
    assert batch.steps == (DONE, StepRecord("b", S.SUCCEEDED, 2, 10.0, 15.0))
    # A long step: its start was written in an earlier batch; its row stands for its end.
    journal.step(StepRecord("c", S.RUNNING, 1, 20.0), StepEvent("c", S.RUNNING, 1, 20.0))
    journal.flush(run)
    end = StepRecord("c", S.SUCCEEDED, 1, 20.0, 30.0, 10.0)
    journal.step(end, StepEvent("c", S.SUCCEEDED, 1, 30.0, started_at=20.0))
    journal.flush(run)
    assert written[1].events == (StepEvent("c", S.RUNNING, 1, 20.0),)
    assert written[1].row_events == frozenset()
    assert (written[2].events, written[2].row_events) == ((), frozenset({"c"}))
