"""The run keeper's store work runs off the event loop (``runtime/takeover.py``).

``devskyy serve`` and the watch daemon run the keeper on the loop that serves requests.
Its heartbeat write and its read of the active runs go to a worker thread, so a store
that is slow to answer holds up only the keeper. Each test holds a store call until
another coroutine has run: with the store work on the loop that coroutine could never run
(the held call would wait for it forever: the test fails when the hold gives up, or at
the per-test timeout). The
slow store is the project's own seam wrapped around a real one: a ``RunStore`` whose
``heartbeat`` waits for a ``threading.Event``, or a real SQLite file and a real
PostgreSQL whose ``runs`` table another connection keeps locked. Time is the fake clock.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pg_server import fresh_database
from sqlalchemy import text
from test_workflow_engine import FakeCaller, engine_for, workflow

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.db import open_engine
from devskyy.adapters.run_store import MemoryRunStore, RunStore, SqlRunStore
from devskyy.model.runs import RunRecord, RunStatus
from devskyy.runtime.takeover import RunKeeper, TakeoverPolicy
from devskyy.runtime.workflows import WorkflowEngine

WF = workflow([{"name": "only", "agent": "a"}])
HOLD = 30.0  # seconds a held call waits before it gives up (the test then fails)


class HeldStore:
    """A ``RunStore`` whose heartbeat tells the loop it started, then waits to be let go.

    ``entered`` is set on the loop (thread-safely) once the heartbeat has begun in its
    thread; with ``wait_here`` the heartbeat then waits for ``release`` before the inner
    store writes it (without, a real store's own lock does the holding). ``written`` gets
    the time of each heartbeat the inner store took.
    """

    def __init__(
        self, inner: RunStore, loop: asyncio.AbstractEventLoop, *, wait_here: bool = True
    ) -> None:
        self.inner = inner
        self.loop = loop
        self.wait_here = wait_here
        self.entered = asyncio.Event()
        self.release = threading.Event()
        self.written: asyncio.Queue[float] = asyncio.Queue()
        self.threads: list[str] = []
        self.fail_next: Exception | None = None

    def heartbeat(self, owner: str, now: float) -> int:
        self.threads.append(threading.current_thread().name)
        self.loop.call_soon_threadsafe(self.entered.set)
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        if self.wait_here and not self.release.wait(HOLD):
            raise AssertionError("the held heartbeat was never released: the loop was blocked")
        count = self.inner.heartbeat(owner, now)
        self.loop.call_soon_threadsafe(self.written.put_nowait, now)
        return count

    def active(self) -> list[RunRecord]:
        self.threads.append(threading.current_thread().name)
        return self.inner.active()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _keeper(engine: WorkflowEngine, clock: FakeClock, started: list[asyncio.Task[Any]]) -> Any:
    return RunKeeper(
        lambda: engine,
        clock,
        lambda coro, name: started.append(asyncio.ensure_future(coro)),
        TakeoverPolicy(stale_after=20.0),
    )


async def _other_coroutine_runs() -> str:
    """Work the loop can do only when nothing blocks it: a handshake between two tasks."""
    ping, pong = asyncio.Event(), asyncio.Event()

    async def answer() -> None:
        await ping.wait()
        pong.set()

    responder = asyncio.ensure_future(answer())
    ping.set()
    await pong.wait()
    await responder
    return "served"


def _orphan(engine: WorkflowEngine, store: RunStore, clock: FakeClock) -> RunRecord:
    """A pending run whose owner (on another host) stopped heartbeating 21 s ago."""
    record = engine.create("wf", {})
    store.claim(record.id, expected_owner=record.owner, owner="host-a:1", now=clock.now())
    clock.advance(21.0)
    return store.get(record.id)


def test_the_loop_serves_while_the_heartbeat_waits_for_the_store(clock: FakeClock) -> None:
    async def scenario() -> None:
        store = HeldStore(MemoryRunStore(), asyncio.get_running_loop())
        engine, _ = engine_for(FakeCaller(clock), WF, store=store, owner="host-b:2")  # type: ignore[arg-type]
        mine = engine.create("wf", {})
        started: list[asyncio.Task[Any]] = []
        keeper = _keeper(engine, clock, started)
        clock.advance(5.0)
        tick = asyncio.ensure_future(keeper.tick())
        await store.entered.wait()  # the heartbeat is under way, and held
        assert await _other_coroutine_runs() == "served"
        assert not tick.done()
        assert store.inner.get(mine.id).heartbeat_at == mine.heartbeat_at  # not written yet
        store.release.set()
        assert await tick == []
        assert store.inner.get(mine.id).heartbeat_at == clock.now()
        # Both store calls ran off the loop's thread.
        assert len(store.threads) == 2
        assert threading.main_thread().name not in store.threads

    asyncio.run(scenario())


def test_two_rounds_at_once_start_one_take_over(clock: FakeClock) -> None:
    """A round still waiting for the store when the next one starts: the orphan is
    taken over once (the generation it was read with is raised once, by one task)."""

    async def scenario() -> None:
        store = HeldStore(MemoryRunStore(), asyncio.get_running_loop(), wait_here=False)
        engine, _ = engine_for(FakeCaller(clock), WF, store=store, owner="host-b:2")  # type: ignore[arg-type]
        orphan = _orphan(engine, store, clock)
        # Take-overs are started, not run, until both rounds have read the orphan.
        pending: list[Any] = []
        keeper = RunKeeper(
            lambda: engine,
            clock,
            lambda coro, name: pending.append(coro),
            TakeoverPolicy(stale_after=20.0),
        )
        first, second = await asyncio.gather(keeper.tick(), keeper.tick())
        assert sorted(first + second) == [orphan.id]
        assert len(pending) == 1
        assert await pending[0] is None
        done = store.inner.get(orphan.id)
        assert (done.status, done.owner, done.generation) == (
            RunStatus.SUCCEEDED,
            "host-b:2",
            orphan.generation + 1,
        )
        assert keeper.taken == [orphan.id]
        assert await keeper.tick() == []  # finished: nobody's orphan

    asyncio.run(scenario())


def test_a_failed_round_is_logged_and_the_next_one_runs(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A driver's error (not a DevskyyError) used to end the keeper's task for good."""

    async def scenario() -> None:
        store = HeldStore(MemoryRunStore(), asyncio.get_running_loop(), wait_here=False)
        engine, _ = engine_for(FakeCaller(clock), WF, store=store, owner="host-b:2")  # type: ignore[arg-type]
        mine = engine.create("wf", {})
        keeper = _keeper(engine, clock, [])
        store.fail_next = ConnectionError("server closed the connection unexpectedly\nSQL: …")
        keeping = asyncio.ensure_future(keeper.keep())
        try:
            # The first round fails; the next, a quarter of stale_after later, writes.
            assert await store.written.get() == mine.created_at + 5.0
        finally:
            keeping.cancel()
        assert clock.sleeps[0] == 5.0
        assert (store.inner.get(mine.id).heartbeat_at or 0.0) >= mine.created_at + 5.0

    with caplog.at_level(logging.ERROR, logger="devskyy.runs"):
        asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records] == [
        "run keeper: ConnectionError: server closed the connection unexpectedly; retrying"
    ]


# -- a real store whose runs table another connection keeps locked ----------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def real_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    server_url = request.getfixturevalue("server_url")
    with fresh_database(server_url) as url:
        yield url


def test_a_locked_store_holds_up_the_keeper_not_the_loop(real_url: str, clock: FakeClock) -> None:
    """The runs table is locked by another client (a long transaction): the heartbeat
    waits for it in the database, the loop goes on, and once the lock is gone the
    heartbeat is written and the orphan is taken over, once."""
    engine = open_engine(real_url)
    try:

        async def scenario() -> None:
            inner = SqlRunStore(engine)
            store = HeldStore(inner, asyncio.get_running_loop(), wait_here=False)
            workflows, _ = engine_for(FakeCaller(clock), WF, store=store, owner="host-b:2")  # type: ignore[arg-type]
            mine = workflows.create("wf", {})
            orphan = _orphan(workflows, store, clock)
            started: list[asyncio.Task[Any]] = []
            keeper = _keeper(workflows, clock, started)
            with _locked_runs(real_url, engine):
                tick = asyncio.ensure_future(keeper.tick())
                await store.entered.wait()
                assert await _other_coroutine_runs() == "served"
                assert not tick.done()  # the database keeps the heartbeat waiting
            assert await tick == [orphan.id]
            assert inner.get(mine.id).heartbeat_at == clock.now()
            assert await started[0] is None
            done = inner.get(orphan.id)
            assert (done.status, done.owner, done.generation) == (
                RunStatus.SUCCEEDED,
                "host-b:2",
                orphan.generation + 1,
            )

        asyncio.run(scenario())
    finally:
        engine.dispose()


@contextmanager
def _locked_runs(url: str, engine: Any) -> Iterator[None]:
    """Another client holds a write lock that the heartbeat's UPDATE must wait for."""
    if url.startswith("sqlite"):
        other = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            other.execute("BEGIN IMMEDIATE")  # the database's one write lock
            yield
        finally:
            other.rollback()
            other.close()
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT id FROM runs FOR UPDATE"))  # every run's row, till rollback
        try:
            yield
        finally:
            conn.rollback()
