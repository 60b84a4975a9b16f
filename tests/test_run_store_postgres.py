"""The run store contract on a real PostgreSQL server (the SQLAlchemy Core path).

The server is ``DEVSKYY_TEST_POSTGRES_URL`` when set; otherwise a throw-away cluster is
started with the machine's ``initdb``/``pg_ctl`` on 127.0.0.1 (as ``postgres`` when the
tests run as root), the recipe of ``tests/test_state_store_postgres.py``. Without a
server or the psycopg driver the tests are skipped. The contract tests themselves are
imported from ``test_run_store`` and run here with a PostgreSQL ``store`` fixture.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from test_run_store import (  # noqa: F401 - collected here, with this module's fixture
    new_run,
    test_claim_of_an_unowned_run,
    test_claim_takes_over_only_from_the_expected_owner,
    test_create_then_get_round_trips,
    test_duplicate_ids_and_unknown_runs_are_refused,
    test_list_is_newest_first_and_filters_by_workflow,
    test_write_applies_patch_steps_and_events_together,
    test_writing_an_unknown_step_is_refused,
)
from test_workflow_engine import FakeCaller, fail, ok, workflow

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.db import metadata, open_engine
from devskyy.adapters.run_sql import run_step_events_table, run_steps_table, runs_table
from devskyy.adapters.run_store import RunStore, SqlRunStore
from devskyy.errors import StateError
from devskyy.model.runs import RunWrite, StepRecord, StepStatus
from devskyy.runtime.workflows import WorkflowEngine

pytestmark = pytest.mark.slow


@pytest.fixture
def store(server_url: str) -> Iterator[RunStore]:
    engine = open_engine(server_url)
    tables = [run_step_events_table, run_steps_table, runs_table]
    metadata.drop_all(engine, tables=tables)
    metadata.create_all(engine, tables=tables)
    yield SqlRunStore(engine)
    engine.dispose()


def test_the_engine_records_a_run_on_postgres(store: RunStore) -> None:
    clock = FakeClock()
    wf = workflow(
        [
            {"name": "reserve", "agent": "inventory"},
            {"name": "pay", "agent": "payments", "needs": ["reserve"], "retry": {"maxAttempts": 2}},
            {
                "name": "release",
                "agent": "inventory",
                "needs": ["pay"],
                "trigger": "any_failed",
                "input": {"id": "${{ steps.reserve.output.id }}"},
            },
        ]
    )
    caller = FakeCaller(
        clock,
        inventory=[ok({"id": "R-1"}), ok({"released": True})],
        payments=[fail(RuntimeError("no"))],
    )
    engine = WorkflowEngine(caller, store, clock, {"wf": wf}.get, commit_interval=0.0)
    record = asyncio.run(engine.run("wf", {}))
    assert {s.name: (s.status.value, s.attempts) for s in record.steps} == {
        "reserve": ("succeeded", 1),
        "pay": ("failed", 2),
        "release": ("succeeded", 1),
    }
    assert store.get(record.id) == record
    assert [e.status.value for e in store.events(record.id)].count("retry_wait") == 1


def test_a_step_gets_its_row_when_it_first_changes_on_postgres(
    store: RunStore, server_url: str
) -> None:
    """The run's plan is its row's; another writer reads it once, the upsert places the
    step's row, a step outside the plan is refused."""
    store.create(new_run())
    engine = open_engine(server_url)
    other = SqlRunStore(engine)
    with pytest.raises(StateError, match="run \"r1\" has no step 'ghost'"):
        other.write(RunWrite("r1", steps=(StepRecord("ghost", StepStatus.RUNNING),)))
    other.write(RunWrite("r1", steps=(StepRecord("fix", StepStatus.RUNNING, 1),)))
    other.write(RunWrite("r1", steps=(StepRecord("fix", StepStatus.SUCCEEDED, 1),)))
    assert [s.status for s in store.get("r1").steps] == [
        StepStatus.PENDING,
        StepStatus.SUCCEEDED,
        StepStatus.PENDING,
    ]
    with engine.connect() as conn:
        rows = conn.execute(select(run_steps_table.c.name, run_steps_table.c.position)).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [("fix", 1)]
