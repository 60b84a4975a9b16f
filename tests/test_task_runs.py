"""One contract test over both task-run stores: SQL and the in-memory twin."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devskyy.adapters.db import open_engine
from devskyy.adapters.task_runs import MemoryTaskRuns, SqlTaskRuns, TaskRun, TaskRuns
from devskyy.errors import NotFound


@pytest.fixture(params=["memory", "sql"])
def runs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TaskRuns]:
    if request.param == "memory":
        yield MemoryTaskRuns()
        return
    engine = open_engine(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        yield SqlTaskRuns(engine)
    finally:
        engine.dispose()


REQUEST = {"task_type": "t", "parameters": {"x": 1}, "required_capabilities": ["echo"]}


def test_create_find_update_get(runs: TaskRuns) -> None:
    assert runs.find("r1") is None
    runs.create(TaskRun("r1", "t", REQUEST, "pending", "host:1", 10.0))
    assert runs.get("r1") == TaskRun("r1", "t", REQUEST, "pending", "host:1", 10.0)
    runs.update("r1", status="running")
    runs.update("r1", status="succeeded", result={"status": "completed"}, finished_at=12.5)
    assert runs.get("r1") == TaskRun(
        "r1", "t", REQUEST, "succeeded", "host:1", 10.0, 12.5, {"status": "completed"}, None
    )
    runs.update("r1", status="pending", owner="host:2", error=None)
    assert (runs.get("r1").status, runs.get("r1").owner) == ("pending", "host:2")


def test_unknown_runs_and_fields(runs: TaskRuns) -> None:
    with pytest.raises(NotFound, match=r'^no task run "nope"$'):
        runs.get("nope")
    runs.update("nope", status="failed")  # no such row: nothing happens
    assert runs.find("nope") is None
    runs.create(TaskRun("r1", "t", REQUEST, "pending", None, 1.0))
    with pytest.raises(TypeError, match=r"^unknown task run field\(s\): request$"):
        runs.update("r1", request={})
    assert runs.get("r1").request == REQUEST
