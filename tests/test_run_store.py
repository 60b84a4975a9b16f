"""One contract for every RunStore: the SQL store and its in-memory twin."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devskyy.adapters.db import open_engine
from devskyy.adapters.run_store import (
    MemoryRunStore,
    RunStore,
    SqlRunStore,
    StepPlans,
    owner_alive,
    process_owner,
)
from devskyy.errors import NotFound, StateError
from devskyy.model.runs import (
    RunPatch,
    RunRecord,
    RunStatus,
    RunWrite,
    StepEvent,
    StepRecord,
    StepStatus,
)

S = StepStatus


@pytest.fixture(params=["memory", "sql", "sql-core"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    if request.param == "memory":
        yield MemoryRunStore()
        return
    engine = open_engine(f"sqlite:///{tmp_path / 'runs.db'}")
    # "sql-core" runs SQLite through the SQLAlchemy Core path other databases take.
    yield SqlRunStore(engine, sqlite_fast_path=request.param == "sql")
    engine.dispose()


def new_run(run_id: str = "r1", created_at: float = 100.0, workflow: str = "wf") -> RunRecord:
    return RunRecord(
        id=run_id,
        workflow=workflow,
        params={"target": "./src", "limit": 3, "deep": {"a": [1, 2]}},
        status=RunStatus.PENDING,
        created_at=created_at,
        owner="host:1",
        steps=(StepRecord("scan"), StepRecord("fix"), StepRecord("report")),
    )


def test_create_then_get_round_trips(store: RunStore) -> None:
    store.create(new_run())
    got = store.get("r1")
    assert got == new_run()
    assert [s.name for s in got.steps] == ["scan", "fix", "report"]
    assert store.events("r1") == []


def test_duplicate_ids_and_unknown_runs_are_refused(store: RunStore) -> None:
    store.create(new_run())
    with pytest.raises(StateError, match='run "r1" already exists'):
        store.create(new_run())
    with pytest.raises(NotFound, match='run "nope" not found'):
        store.get("nope")
    with pytest.raises(NotFound, match='run "nope" not found'):
        store.events("nope")
    with pytest.raises(NotFound, match='run "nope" not found'):
        store.write(RunWrite("nope", patch=RunPatch(status=RunStatus.RUNNING)))
    with pytest.raises(NotFound, match='run "nope" not found'):
        store.claim("nope", expected_owner=None, owner="me", now=1.0)


def test_write_applies_patch_steps_and_events_together(store: RunStore) -> None:
    store.create(new_run())
    scan = StepRecord(
        "scan",
        S.SUCCEEDED,
        attempts=2,
        started_at=101.0,
        finished_at=104.5,
        duration=3.5,
        output={"files": ["a.py", "b.py"], "count": 2, "nested": {"ok": True}},
    )
    fix = StepRecord("fix", S.RUNNING, attempts=1, started_at=104.5)
    events = (
        StepEvent("scan", S.RUNNING, 1, 101.0),
        StepEvent("scan", S.RETRY_WAIT, 1, 102.0, error="TemporaryError: flaky", retry_at=103.0),
        StepEvent("scan", S.RUNNING, 2, 103.0),
        StepEvent("scan", S.SUCCEEDED, 2, 104.5, started_at=103.0),
        StepEvent("fix", S.RUNNING, 1, 104.5),
    )
    store.write(
        RunWrite(
            "r1",
            patch=RunPatch(status=RunStatus.RUNNING, started_at=101.0, heartbeat_at=104.5),
            steps=(scan, fix),
            events=events,
        )
    )
    got = store.get("r1")
    assert got.status is RunStatus.RUNNING
    assert got.started_at == 101.0
    assert got.heartbeat_at == 104.5
    assert got.finished_at is None
    assert got.owner == "host:1"
    assert got.steps == (scan, fix, StepRecord("report"))
    assert store.events("r1") == list(events)

    # A later write appends events and replaces only the steps it names.
    done = StepRecord("fix", S.FAILED, 1, 104.5, 106.0, 1.5, error="boom", error_type="E")
    skipped = StepRecord("report", S.SKIPPED, reason="needs failed: fix")
    store.write(
        RunWrite(
            "r1",
            patch=RunPatch(status=RunStatus.FAILED, finished_at=106.0, error="step fix failed"),
            steps=(done, skipped),
            events=(StepEvent("fix", S.FAILED, 1, 106.0, error="boom"),),
        )
    )
    got = store.get("r1")
    assert got.status is RunStatus.FAILED
    assert got.error == "step fix failed"
    assert got.duration == 5.0
    assert got.steps == (scan, done, skipped)
    assert len(store.events("r1")) == 6
    assert got.to_dict()["steps"]["fix"] == {
        "status": "failed",
        "attempts": 1,
        "duration": 1.5,
        "output": None,
        "started_at": 104.5,
        "finished_at": 106.0,
        "error": "boom",
        "error_type": "E",
        "reason": None,
    }


def test_writing_an_unknown_step_is_refused(store: RunStore) -> None:
    store.create(new_run())
    with pytest.raises(StateError, match="run \"r1\" has no step 'ghost'"):
        store.write(RunWrite("r1", steps=(StepRecord("scan"), StepRecord("ghost", S.RUNNING))))


def test_list_is_newest_first_and_filters_by_workflow(store: RunStore) -> None:
    store.create(new_run("a", 100.0))
    store.create(new_run("b", 200.0, workflow="other"))
    store.create(new_run("c", 300.0))
    assert [r.id for r in store.list_runs()] == ["c", "b", "a"]
    assert [r.id for r in store.list_runs(workflow="wf")] == ["c", "a"]
    assert [r.id for r in store.list_runs(limit=1)] == ["c"]
    assert store.list_runs(workflow="none") == []
    assert [s.name for s in store.list_runs()[0].steps] == ["scan", "fix", "report"]


def test_claim_takes_over_only_from_the_expected_owner(store: RunStore) -> None:
    store.create(new_run())
    assert not store.claim("r1", expected_owner="host:2", owner="host:3", now=500.0)
    assert store.get("r1").owner == "host:1"
    assert store.claim("r1", expected_owner="host:1", owner="host:3", now=500.0)
    got = store.get("r1")
    assert (got.owner, got.heartbeat_at, got.status) == ("host:3", 500.0, RunStatus.RUNNING)
    # A second resumer that read the old owner loses the race.
    assert not store.claim("r1", expected_owner="host:1", owner="host:4", now=501.0)


def test_claim_of_an_unowned_run(store: RunStore) -> None:
    run = new_run()
    store.create(RunRecord(**{**run.__dict__, "owner": None}))
    assert store.claim("r1", expected_owner=None, owner="me:1", now=1.0)
    assert store.get("r1").owner == "me:1"


def test_sql_store_survives_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = open_engine(url)
    SqlRunStore(engine).create(new_run())
    SqlRunStore(engine).write(
        RunWrite("r1", steps=(StepRecord("scan", S.SUCCEEDED, 1, output={"n": 1}),))
    )
    engine.dispose()
    again = open_engine(url)
    assert SqlRunStore(again).get("r1").step("scan").output == {"n": 1}
    again.dispose()


def test_owner_of_this_process_is_alive_and_a_dead_one_is_not() -> None:
    assert process_owner() == f"{socket.gethostname()}:{os.getpid()}"
    assert owner_alive(process_owner()) is True
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = f"{socket.gethostname()}:{child.stdout.strip()}"
    assert owner_alive(dead) is False
    assert owner_alive("elsewhere.example:1") is None
    assert owner_alive(None) is None


def test_a_store_that_cannot_write_raises_state_error(tmp_path: Path) -> None:
    for fast in (True, False):
        url = f"sqlite:///{tmp_path / f'ro{fast}.db'}"
        engine = open_engine(url)
        store = SqlRunStore(engine, sqlite_fast_path=fast)
        store.create(new_run())
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TRIGGER no_events BEFORE INSERT ON run_step_events "
                "BEGIN SELECT RAISE(ABORT, 'read only'); END"
            )
        with pytest.raises(StateError) as refused:
            store.write(RunWrite("r1", events=(StepEvent("scan", S.RUNNING, 1, 1.0),)))
        # The driver's reason and what to do, never the SQL statement.
        assert str(refused.value) == f'run "r1": the state store {url} is read-only ' + (
            "(read only): run as a user who may write it (and, for SQLite, its folder) "
            "or use another --state"
        )
        assert store.events("r1") == []
        engine.dispose()


@pytest.mark.parametrize("fast", [True, False], ids=["sql", "sql-core"])
def test_a_new_run_is_one_row_its_unchanged_steps_read_back_pending(
    tmp_path: Path, fast: bool
) -> None:
    """Creating a run writes its row and plan alone; a step gets a row when it first
    changes, placed by the plan; readers show the others pending, in plan order."""
    engine = open_engine(f"sqlite:///{tmp_path / 'runs.db'}")
    store = SqlRunStore(engine, sqlite_fast_path=fast)
    store.create(new_run())

    def rows() -> list[tuple[object, ...]]:
        with engine.begin() as conn:
            return [
                tuple(r)
                for r in conn.exec_driver_sql(
                    "SELECT name, position, status FROM run_steps ORDER BY position"
                )
            ]

    with engine.begin() as conn:
        plan = conn.exec_driver_sql("SELECT step_names FROM runs").scalar_one()
    assert (rows(), plan) == ([], '["scan", "fix", "report"]')
    store.write(RunWrite("r1", steps=(StepRecord("report", S.RUNNING, 1, 5.0),)))
    store.write(RunWrite("r1", steps=(StepRecord("report", S.SUCCEEDED, 1, 5.0, 6.0),)))
    assert rows() == [("report", 2, "succeeded")]
    assert store.get("r1").steps == (
        StepRecord("scan"),
        StepRecord("fix"),
        StepRecord("report", S.SUCCEEDED, 1, 5.0, 6.0),
    )
    engine.dispose()


@pytest.mark.parametrize("fast", [True, False], ids=["sql", "sql-core"])
def test_a_writer_that_did_not_create_the_run_reads_its_plan(tmp_path: Path, fast: bool) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    engine = open_engine(url)
    SqlRunStore(engine).create(new_run())
    other = SqlRunStore(engine, sqlite_fast_path=fast)  # a resumer: no plan in memory
    with pytest.raises(StateError, match="run \"r1\" has no step 'ghost'"):
        other.write(RunWrite("r1", steps=(StepRecord("fix", S.RUNNING), StepRecord("ghost"))))
    with pytest.raises(NotFound, match='run "nope" not found'):
        other.write(RunWrite("nope", steps=(StepRecord("fix", S.RUNNING),)))
    other.write(RunWrite("r1", steps=(StepRecord("fix", S.RUNNING, 1),)))
    assert [s.status for s in other.get("r1").steps] == [S.PENDING, S.RUNNING, S.PENDING]
    with engine.begin() as conn:
        placed = conn.exec_driver_sql("SELECT name, position FROM run_steps").all()
    assert [tuple(r) for r in placed] == [("fix", 1)]
    engine.dispose()


@pytest.mark.parametrize("stored", ["""'{"scan": 1}'""", "NULL"])
def test_a_stored_plan_that_is_not_a_list_of_names_is_named(tmp_path: Path, stored: str) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'runs.db'}")
    SqlRunStore(engine).create(new_run())
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE runs SET step_names = {stored}")
    message = (
        "store row runs(id=r1) has a step_names that is not a list of names (restore from a backup)"
    )
    with pytest.raises(StateError) as read:
        SqlRunStore(engine).get("r1")
    assert str(read.value) == message
    with pytest.raises(StateError) as written:
        SqlRunStore(engine).write(RunWrite("r1", steps=(StepRecord("scan", S.RUNNING),)))
    assert str(written.value) == message
    engine.dispose()


def test_a_created_step_that_is_more_than_pending_keeps_every_field(store: RunStore) -> None:
    """Only a step equal to ``StepRecord(name)`` may go without a row: one that differs in
    any single field reads back with it."""
    changed: dict[str, object] = {
        "status": S.SKIPPED,
        "attempts": 2,
        "started_at": 1.0,
        "finished_at": 2.0,
        "duration": 1.0,
        "output": {"n": 1},
        "error": "boom",
        "error_type": "E",
        "reason": "why",
    }
    assert set(changed) == {f.name for f in dataclasses.fields(StepRecord)} - {"name"}
    steps = tuple(
        dataclasses.replace(StepRecord(f"s{i}"), **{field: value})
        for i, (field, value) in enumerate(changed.items())
    )
    run = dataclasses.replace(new_run(), steps=(StepRecord("plain"), *steps))
    store.create(run)
    assert store.get("r1").steps == run.steps


def test_a_store_keeps_the_plans_of_its_latest_runs_only() -> None:
    plans = StepPlans(keep=2)
    for run_id in ("a", "b", "c"):
        plans.remember(run_id, ["x", "y"])
    read: list[str] = []

    def names(run_id: str) -> list[str]:
        read.append(run_id)
        return ["x", "y"]

    for run_id in ("c", "b", "a"):
        assert plans.positions(RunWrite(run_id, steps=(StepRecord("y"),)), names) == {
            "x": 0,
            "y": 1,
        }
    assert read == ["a"]  # "a" was the oldest of three when only two are kept


def test_a_step_row_that_stands_for_its_end_event_reads_back_in_the_log(store: RunStore) -> None:
    """``RunWrite.row_events``: no event row for those ends; the log has them back, by
    time, each after its own step's stored events; a later write of the row unmarks it."""
    store.create(new_run())
    scan = StepRecord("scan", S.SUCCEEDED, 1, 101.0, 102.0, 1.0, output={"n": 1})
    fix_running = StepRecord("fix", S.RUNNING, 1, 102.0)
    store.write(
        RunWrite(
            "r1",
            steps=(scan, fix_running),
            events=(StepEvent("fix", S.RUNNING, 1, 102.0),),
            row_events=frozenset({"scan"}),
        )
    )
    fix = StepRecord("fix", S.FAILED, 1, 102.0, 103.0, 1.0, error="boom", error_type="E")
    report = StepRecord("report", S.SKIPPED, finished_at=103.0, reason="needs failed: fix")
    store.write(RunWrite("r1", steps=(fix, report), row_events=frozenset({"fix", "report"})))
    assert store.get("r1").steps == (scan, fix, report)
    assert store.events("r1") == [
        StepEvent("scan", S.SUCCEEDED, 1, 102.0, started_at=101.0),  # ends before fix starts
        StepEvent("fix", S.RUNNING, 1, 102.0),
        StepEvent("fix", S.FAILED, 1, 103.0, error="boom", started_at=102.0),
        StepEvent("report", S.SKIPPED, 0, 103.0, error="needs failed: fix"),
    ]
    # The same row written again without the mark: its end is the stored events' alone.
    store.write(RunWrite("r1", steps=(report,)))
    assert [(e.step, e.status) for e in store.events("r1")] == [
        ("scan", S.SUCCEEDED),
        ("fix", S.RUNNING),
        ("fix", S.FAILED),
    ]
