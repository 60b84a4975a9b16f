"""The dashboard's runs list query: filters, order and step counts from SQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import fresh_database

from devskyy.adapters.db import open_engine
from devskyy.adapters.run_store import SqlRunStore
from devskyy.adapters.ui_queries import run_page, workflow_names
from devskyy.model.runs import RunPatch, RunRecord, RunStatus, RunWrite, StepRecord, StepStatus

S = StepStatus


def _run(run_id: str, created_at: float, workflow: str = "wf", steps: int = 3) -> RunRecord:
    return RunRecord(
        id=run_id,
        workflow=workflow,
        params={},
        status=RunStatus.PENDING,
        created_at=created_at,
        steps=tuple(StepRecord(f"s{i}") for i in range(steps)),
    )


@pytest.fixture(params=["sql", "sql-core", pytest.param("postgres", marks=pytest.mark.slow)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param != "postgres":
        yield f"sqlite:///{tmp_path / 'runs.db'}"
        return
    with fresh_database(request.getfixturevalue("server_url")) as pg_url:
        yield pg_url


def test_the_runs_list_counts_every_step_of_the_plan(
    url: str, request: pytest.FixtureRequest
) -> None:
    """Steps that never ran (no row yet) count in the total, not in the done."""
    engine = open_engine(url)
    store = SqlRunStore(engine, sqlite_fast_path="sql-core" not in request.node.name)
    store.create(_run("new", 1.0))
    store.create(_run("half", 2.0))
    store.create(_run("other", 3.0, workflow="elsewhere", steps=1))
    store.write(
        RunWrite(
            "half",
            patch=RunPatch(status=RunStatus.RUNNING),
            steps=(StepRecord("s0", S.SUCCEEDED, 1), StepRecord("s1", S.RUNNING, 1)),
        )
    )
    page = run_page(engine)
    assert [(line.run.id, line.steps_done, line.steps_total) for line in page.lines] == [
        ("other", 0, 1),
        ("half", 1, 3),
        ("new", 0, 3),
    ]
    assert page.total == 3
    running = run_page(engine, workflow="wf", statuses=["running"])
    assert [(line.run.id, line.steps_done, line.steps_total) for line in running.lines] == [
        ("half", 1, 3)
    ]
    assert running.total == 1
    assert workflow_names(engine) == ["elsewhere", "wf"]
    engine.dispose()
