"""One contract test over both execution-history stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devskyy.adapters.db import open_engine
from devskyy.adapters.history_store import (
    ExecutionRecord,
    HistoryStore,
    MemoryHistoryStore,
    SqlHistoryStore,
)


@pytest.fixture(params=["memory", "sql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HistoryStore]:
    if request.param == "memory":
        yield MemoryHistoryStore()
        return
    engine = open_engine(f"sqlite:///{tmp_path / 'state.db'}")
    yield SqlHistoryStore(engine)
    engine.dispose()


def record(n: int, agents: tuple[str, ...]) -> ExecutionRecord:
    return ExecutionRecord(
        task_id=f"t{n}",
        task_type="scan_and_fix",
        status="completed" if n % 2 else "failed",
        priority="high",
        started_at=1000.0 + n,
        duration=0.5,
        agents=agents,
        attempts=dict.fromkeys(agents, 1),
        results={a: {"n": n} for a in agents},
        errors={} if n % 2 else {"x": "boom"},
    )


def test_append_and_read_back_in_order(store: HistoryStore) -> None:
    assert store.count() == 0
    assert store.recent() == []
    for n in range(5):
        store.append(record(n, ("scanner", "fixer") if n < 3 else ("content",)))
    assert store.count() == 5
    assert [r.task_id for r in store.recent()] == ["t0", "t1", "t2", "t3", "t4"]
    assert [r.task_id for r in store.recent(limit=2)] == ["t3", "t4"]
    assert store.recent(limit=0) == []
    assert store.recent()[0] == record(0, ("scanner", "fixer"))


def test_filter_by_agent(store: HistoryStore) -> None:
    for n in range(5):
        store.append(record(n, ("scanner", "fixer") if n < 3 else ("content",)))
    assert [r.task_id for r in store.recent(agent="fixer")] == ["t0", "t1", "t2"]
    assert [r.task_id for r in store.recent(limit=1, agent="content")] == ["t4"]
    assert store.recent(agent="nobody") == []


def test_as_dict_is_json_ready(store: HistoryStore) -> None:
    store.append(record(1, ("a",)))
    assert store.recent()[0].as_dict() == {
        "task_id": "t1",
        "task_type": "scan_and_fix",
        "status": "completed",
        "priority": "high",
        "started_at": 1001.0,
        "duration": 0.5,
        "agents": ["a"],
        "attempts": {"a": 1},
        "results": {"a": {"n": 1}},
        "errors": {},
    }
