"""One contract over every ScheduleStore: memory, SQLite and a real PostgreSQL.

A due time is recorded once (a second record of any row of a batch refuses the whole
batch), the fence runs inside the transaction and a refusing fence records nothing, and the
reads order newest first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_server import store_url

from devskyy.adapters.db import open_engine
from devskyy.adapters.schedule_store import (
    Fire,
    MemoryScheduleStore,
    ScheduleStore,
    SqlScheduleStore,
)


class Refused(Exception):
    pass


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ScheduleStore]:
    if request.param == "memory":
        yield MemoryScheduleStore()
        return
    with store_url(request, tmp_path) as url:
        engine = open_engine(url)
        yield SqlScheduleStore(engine)
        engine.dispose()


def fire(due: float, status: str = "fired", workflow: str = "w", key: str = "k") -> Fire:
    run = f"run{int(due)}" if status == "fired" else None
    return Fire(workflow, key, due, status, run, "", "* * * * *", "UTC", due + 1)


def test_a_due_time_is_recorded_once(store: ScheduleStore) -> None:
    assert store.last_due("w", "k") is None
    assert store.record([fire(60.0, "armed"), fire(120.0)])
    assert store.last_due("w", "k") == 120.0
    # Another leader's batch with one row already recorded changes nothing.
    assert not store.record([fire(180.0), fire(120.0)])
    assert store.last_due("w", "k") == 120.0
    assert store.record([fire(180.0)])
    assert [f.due_at for f in store.recent("w", "k")] == [180.0, 120.0, 60.0]
    assert store.recent("w", "k", limit=1) == [fire(180.0)]


def test_a_refusing_fence_records_nothing(store: ScheduleStore) -> None:
    seen: list[Any] = []

    def fence(conn: Any) -> None:
        seen.append(conn)
        raise Refused

    with pytest.raises(Refused):
        store.record([fire(60.0)], fence)
    assert seen
    assert store.last_due("w", "k") is None
    assert store.record([fire(60.0)], lambda conn: None)


def test_listing_is_newest_first_and_per_workflow(store: ScheduleStore) -> None:
    store.record([fire(60.0, workflow="a"), fire(120.0, "missed", workflow="b")])
    store.record([fire(90.0, workflow="b", key="other")])
    assert [(f.workflow, f.due_at) for f in store.list_fires()] == [
        ("b", 120.0),
        ("b", 90.0),
        ("a", 60.0),
    ]
    assert [f.due_at for f in store.list_fires(workflow="a")] == [60.0]
    assert store.list_fires(limit=1)[0].status == "missed"
    assert store.last_due("b", "k") == 120.0
    assert store.last_due("b", "other") == 90.0
