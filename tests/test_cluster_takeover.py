"""Run take-over (issue 15.4) with the fake clock: owners, heartbeats, generations, fencing.

Two engines on one run store stand for two servers (owners on different hosts, so only
the heartbeat tells whether an owner is alive). The first drives a run until a step
hangs; when its heartbeat goes stale the second takes the run over and finishes it
without re-running the succeeded step; when the first wakes up, its next write is refused
and it stops, writing nothing. The store is a real SQLite file and a real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from pg_server import store_url
from test_workflow_engine import FakeCaller, engine_for, ok, workflow

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.db import open_engine
from devskyy.adapters.run_store import MemoryRunStore, RunFenced, RunStore, SqlRunStore
from devskyy.model.runs import RunPatch, RunStatus, RunWrite, StepStatus
from devskyy.runtime.takeover import RunKeeper, TakeoverPolicy

WF = workflow(
    [
        {"name": "first", "agent": "a"},
        {"name": "second", "agent": "b", "needs": ["first"]},
    ]
)


def gate(event: asyncio.Event) -> Any:
    async def act(caller: FakeCaller, kwargs: dict[str, Any], timeout: float | None) -> Any:
        await event.wait()
        return {"late": True}

    return act


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[RunStore]:
    with store_url(request, tmp_path) as url:
        engine = open_engine(url)
        yield SqlRunStore(engine)
        engine.dispose()


async def _until(predicate: Any) -> None:
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


def test_a_stale_owner_is_taken_over_and_fenced(store: RunStore, clock: FakeClock) -> None:
    release = asyncio.Event()
    old_caller = FakeCaller(clock, a=[ok({"n": 1})], b=[gate(release)])
    new_caller = FakeCaller(clock, a=[ok({"n": 2})], b=[ok({"n": 3})])
    old, _ = engine_for(old_caller, WF, store=store, owner="host-a:100")  # type: ignore[arg-type]
    new, _ = engine_for(new_caller, WF, store=store, owner="host-b:200", first_id=50)  # type: ignore[arg-type]
    started: list[asyncio.Task[Any]] = []
    keeper = RunKeeper(
        lambda: new,
        clock,
        lambda coro, name: started.append(asyncio.ensure_future(coro)),
        TakeoverPolicy(stale_after=20.0),
    )

    async def scenario() -> None:
        first = asyncio.ensure_future(old.run("wf"))
        await _until(lambda: old_caller.called("b") == 1)
        run_id = "run1"
        assert store.get(run_id).generation == 0
        # The owner is alive: its heartbeat is fresh, nobody takes its run.
        clock.advance(19.0)
        assert await keeper.tick() == []
        # A stale heartbeat (the owner stopped heartbeating 21 s ago): taken over.
        clock.advance(2.0)
        assert [r.id for r in await keeper.orphans()] == [run_id]
        assert await keeper.tick() == [run_id]
        finished = await started[0]
        assert finished is None
        record = store.get(run_id)
        assert (record.status, record.owner, record.generation) == (
            RunStatus.SUCCEEDED,
            "host-b:200",
            1,
        )
        assert record.step("first").output == {"n": 1}  # not run again
        assert record.step("second").output == {"n": 3}
        assert new_caller.called("a") == 0
        assert keeper.taken == [run_id]
        # The old owner wakes up: its write is refused and it stops, changing nothing.
        events_before = store.events(run_id)
        release.set()
        with pytest.raises(RunFenced, match=r'run "run1" was taken over by another owner'):
            await first
        assert store.get(run_id) == record
        assert store.events(run_id) == events_before
        assert await keeper.tick() == []  # finished runs are nobody's orphans

    asyncio.run(scenario())


def test_two_survivors_one_wins_the_take_over(store: RunStore, clock: FakeClock) -> None:
    caller = FakeCaller(clock)
    owner, _ = engine_for(caller, WF, store=store, owner="host-a:1")  # type: ignore[arg-type]
    record = owner.create("wf", {})
    snapshot = store.active()[0]
    assert (snapshot.id, snapshot.generation, snapshot.status) == (
        record.id,
        0,
        RunStatus.PENDING,
    )
    assert store.take_over(record.id, generation=0, owner="host-b:2", now=clock.now()) == 1
    assert store.take_over(record.id, generation=0, owner="host-c:3", now=clock.now()) is None
    assert store.get(record.id).owner == "host-b:2"
    # The old owner's write carries generation 0: refused, nothing written.
    with pytest.raises(RunFenced):
        store.write(RunWrite(record.id, RunPatch(status=RunStatus.FAILED), generation=0))
    assert store.get(record.id).status is RunStatus.PENDING
    store.write(RunWrite(record.id, RunPatch(status=RunStatus.RUNNING), generation=1))
    assert store.get(record.id).status is RunStatus.RUNNING
    # Heartbeats renew only the owner's active runs.
    clock.advance(5.0)
    assert store.heartbeat("host-a:1", clock.now()) == 0
    assert store.heartbeat("host-b:2", clock.now()) == 1
    assert store.get(record.id).heartbeat_at == clock.now()


def test_the_memory_twin_fences_alike(clock: FakeClock) -> None:
    store = MemoryRunStore()
    caller = FakeCaller(clock)
    engine, _ = engine_for(caller, WF, store=store)
    record = engine.create("wf", {})
    assert store.claim(record.id, expected_owner=record.owner, owner="x:1", now=1.0) == 1
    with pytest.raises(RunFenced, match="held generation 0"):
        store.write(RunWrite(record.id, RunPatch(error="late"), generation=0))
    assert store.get(record.id).error is None
    assert store.take_over(record.id, generation=1, owner="y:2", now=2.0) == 2
    assert [r.id for r in store.active()] == [record.id]


def test_a_run_of_a_dead_local_process_is_taken_over_at_once(
    store: RunStore, clock: FakeClock
) -> None:
    caller = FakeCaller(clock)
    engine, _ = engine_for(caller, WF, store=store, owner="test-host:1")  # type: ignore[arg-type]
    dead = engine.create("wf", {})
    # A pid on this host that does not exist: no need to wait for its (fresh) heartbeat.
    gone = f"{socket.gethostname()}:999999"
    store.claim(dead.id, expected_owner=dead.owner, owner=gone, now=clock.now())
    started: list[Any] = []
    keeper = RunKeeper(
        lambda: engine, clock, lambda coro, name: started.append(coro), TakeoverPolicy(600.0)
    )
    assert asyncio.run(keeper.tick()) == [dead.id]
    done = asyncio.run(started[0])
    assert done is None
    record = store.get(dead.id)
    assert record.status is RunStatus.SUCCEEDED
    assert [s.status for s in record.steps] == [StepStatus.SUCCEEDED, StepStatus.SUCCEEDED]


def test_a_compiled_run_is_taken_over_like_a_named_one(clock: FakeClock) -> None:
    """Tasks (``task:<type>``) and scheduled runs are rows like any run: recompiled from
    their params by the engine that takes them over."""
    store = MemoryRunStore()
    compiled: list[dict[str, Any]] = []

    def compile_task(params: dict[str, Any]) -> Any:
        compiled.append(params)
        return WF

    caller = FakeCaller(clock, a=[ok({"n": 1})], b=[ok({"n": 2})])
    engine, _ = engine_for(caller, store=store, owner="host-b:2")
    engine.compilers["task:"] = compile_task
    record = engine.create_run(WF, "task:relay", {"x": 1})
    store.claim(record.id, expected_owner=record.owner, owner="host-a:1", now=clock.now())
    clock.advance(200.0)
    started: list[Any] = []
    keeper = RunKeeper(lambda: engine, clock, lambda coro, name: started.append(coro))
    assert asyncio.run(keeper.tick()) == [record.id]
    asyncio.run(started[0])
    done = store.get(record.id)
    assert (done.status, done.owner, done.generation) == (RunStatus.SUCCEEDED, "host-b:2", 2)
    assert compiled == [{"x": 1}]
    assert [caller.called("a"), caller.called("b")] == [1, 1]
