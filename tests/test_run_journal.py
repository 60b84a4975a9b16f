"""RunJournal: a batch's events in order, an attempt that started and ended within the
batch written as its end event alone; one still running at the commit keeps its start."""

from __future__ import annotations

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.run_store import MemoryRunStore
from devskyy.model.runs import RunRecord, StepEvent, StepRecord, StepStatus
from devskyy.runtime.run_journal import RunJournal

S = StepStatus


def test_started_and_ended_within_a_batch_is_one_row_and_a_running_attempt_keeps_its_start(
    clock: FakeClock,
) -> None:
    store = MemoryRunStore()
    run = store.create(
        RunRecord("r1", "wf", steps=(StepRecord("a"), StepRecord("b"), StepRecord("c")))
    )
    heard: list[tuple[str, str]] = []
    journal = RunJournal(store, clock, lambda _run, step: heard.append((step.name, step.status)))
    t = clock.now()
    moves = [
        (StepRecord("a", S.RUNNING, 1, t), StepEvent("a", S.RUNNING, 1, t)),
        (StepRecord("b", S.RUNNING, 1, t), StepEvent("b", S.RUNNING, 1, t)),
        (
            StepRecord("a", S.RETRY_WAIT, 1, t, error="Boom"),
            StepEvent("a", S.RETRY_WAIT, 1, t + 1, "Boom", t + 2, t),
        ),
        (StepRecord("a", S.RUNNING, 2, t), StepEvent("a", S.RUNNING, 2, t + 2)),
        (StepRecord("c", S.SKIPPED, 0, reason="x"), StepEvent("c", S.SKIPPED, 0, t + 2, "x")),
        (
            StepRecord("a", S.SUCCEEDED, 2, t, t + 3, 1.0, {"n": 1}),
            StepEvent("a", S.SUCCEEDED, 2, t + 3, None, None, t + 2),
        ),
    ]
    for record, event in moves:
        journal.step(record, event)
    journal.apply(run)
    assert [(e.step, e.status.value, e.attempt) for e in store.events("r1")] == [
        ("b", "running", 1),  # still running at the commit: its start is kept
        ("a", "retry_wait", 1),
        ("c", "skipped", 0),
        ("a", "succeeded", 2),
    ]
    assert heard == [(r.name, r.status) for r, _ in moves]
    journal.step(
        StepRecord("b", S.SUCCEEDED, 1, t, t + 4, 4.0, {}),
        StepEvent("b", S.SUCCEEDED, 1, t + 4, None, None, t),
    )
    journal.apply(run)
    assert [(e.step, e.status.value) for e in store.events("r1")][4:] == [("b", "succeeded")]
    assert [s.status.value for s in store.get("r1").steps] == ["succeeded", "succeeded", "skipped"]
