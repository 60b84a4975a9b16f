"""The run event stream over the fake clock: it polls, reports changes once, and ends."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.run_store import MemoryRunStore
from devskyy.api.ui.run_views import LIVE_POLL_SECONDS, LIVE_STREAM_SECONDS, live_events
from devskyy.model.runs import RunPatch, RunRecord, RunStatus, RunWrite, StepRecord, StepStatus


def context(store: MemoryRunStore, clock: FakeClock) -> Any:
    # Only the parts the stream reads: the clock and the run store.
    return SimpleNamespace(
        system=SimpleNamespace(clock=clock),
        runs=SimpleNamespace(engine=SimpleNamespace(store=store)),
    )


def running_run(store: MemoryRunStore) -> None:
    steps = (StepRecord("a", StepStatus.RUNNING, 1), StepRecord("b"))
    store.create(RunRecord("r1", "flow", {}, RunStatus.RUNNING, steps=steps))


class ScriptedClock(FakeClock):
    """The fake clock, finishing run r1 at the ``finish_at``-th sleep (never when -1)."""

    def __init__(self, store: MemoryRunStore, finish_at: int) -> None:
        super().__init__()
        self.store, self.finish_at = store, finish_at

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        if len(self.sleeps) == self.finish_at:
            done = (
                StepRecord("a", StepStatus.SUCCEEDED, 1),
                StepRecord("b", StepStatus.SUCCEEDED, 1),
            )
            self.store.write(RunWrite("r1", RunPatch(status=RunStatus.SUCCEEDED), done))


async def collect(stream: Any) -> list[str]:
    return [event async for event in stream]


def test_a_run_in_flight_is_reported_once_per_change_then_ended() -> None:
    store = MemoryRunStore()
    clock = ScriptedClock(store, finish_at=3)
    running_run(store)
    events = asyncio.run(collect(live_events(context(store, clock), "r1")))
    assert events[0] == "retry: 1000\n\n"
    states = [json.loads(e.split("data: ", 1)[1]) for e in events if e.startswith("event: state")]
    assert [s["status"] for s in states] == ["running", "succeeded"]  # no repeats while unchanged
    assert states[0]["steps"]["a"] == {"status": "running", "attempts": 1, "duration": "—"}
    assert states[1]["steps"]["b"]["status"] == "succeeded"
    assert events[-1] == "event: end\ndata: {}\n\n"
    assert clock.sleeps == [LIVE_POLL_SECONDS] * 3


def test_a_stream_closes_after_its_lifetime_so_the_browser_reconnects() -> None:
    store = MemoryRunStore()
    clock = ScriptedClock(store, finish_at=-1)
    running_run(store)
    events = asyncio.run(collect(live_events(context(store, clock), "r1")))
    assert len([e for e in events if e.startswith("event: state")]) == 1
    assert not any(e.startswith("event: end") for e in events)  # closed, not ended
    assert clock.monotonic() > LIVE_STREAM_SECONDS
    assert clock.monotonic() <= LIVE_STREAM_SECONDS + 2 * LIVE_POLL_SECONDS


def test_an_unknown_run_ends_at_once() -> None:
    store, clock = MemoryRunStore(), FakeClock()
    events = asyncio.run(collect(live_events(context(store, clock), "nope")))
    assert events == ["retry: 1000\n\n", "event: end\ndata: {}\n\n"]
    assert clock.sleeps == []
