"""The state stores: the shared contract over SQLite and the in-memory twin, plus the
SQL-only guarantees (canonical row text, rollback of a failure inside the database)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from planner_strategies import agent, rs
from sqlalchemy import Engine, select, text
from state_store_contract import StoreContract, meta

from devskyy.adapters.db import open_engine
from devskyy.adapters.state_sql import resources_table, revisions_table
from devskyy.adapters.state_store import (
    MemoryStateStore,
    SqlStateStore,
    StateStore,
)
from devskyy.core.plan import canonical, plan
from devskyy.errors import StateError


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[StateStore]:
        engine = open_engine(f"sqlite:///{tmp_path / 'state.db'}")
        yield SqlStateStore(engine)
        engine.dispose()


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> StateStore:
        return MemoryStateStore()


def test_sql_rows_hold_canonical_text(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    store = SqlStateStore(engine)
    store.apply(plan(rs(agent("a")), store.live()), meta(git_commit="f" * 40, git_dirty=True))
    with engine.connect() as conn:
        row = conn.execute(select(resources_table)).one()
        rev = conn.execute(select(revisions_table)).one()
    assert (row.kind, row.name, row.revision) == ("Agent", "a", 1)
    assert row.document.startswith('{"apiVersion":"devskyy.dev/v1","kind":"Agent"')
    assert (rev.number, rev.source, rev.git_commit, rev.git_dirty) == (1, "manifests", "f" * 40, 1)
    assert rev.summary == '{"created": 1, "deleted": 0, "unchanged": 0, "updated": 0}'
    # a second store on the same file sees the same state (nothing cached in the object)
    assert canonical(SqlStateStore(open_engine(f"sqlite:///{tmp_path / 's.db'}")).live()) == (
        canonical(store.live())
    )
    engine.dispose()


def test_a_database_failure_after_rows_were_written_rolls_everything_back(
    tmp_path: Path,
) -> None:
    """The resource rows are written before the revision row; make that last insert fail
    inside the database (a trigger) and check that none of the earlier writes survive."""
    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    store = SqlStateStore(engine)
    store.apply(plan(rs(agent("a"), agent("b")), store.live()), meta())
    before = sorted(_rows(engine))
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON revisions WHEN NEW.number = 2 "
                "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
            )
        )
    change = plan(rs(agent("a", replicas=9), agent("c")), store.live(), prune=True)
    assert (change.creates, change.updates, change.deletes) == (1, 1, 1)
    with pytest.raises(StateError) as info:
        store.apply(change, meta())
    assert str(info.value) == (
        "the store refused the apply (another apply at the same time?): "
        "IntegrityError: disk says no"
    )
    assert sorted(_rows(engine)) == before
    assert [r.number for r in store.revisions()] == [1]
    engine.dispose()


def _rows(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(resources_table)).all()]


def test_a_stored_row_the_models_refuse_is_a_state_error(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 's.db'}")
    store = SqlStateStore(engine)
    store.apply(plan(rs(agent("a")), store.live()), meta())
    with engine.begin() as conn:
        conn.execute(
            resources_table.update().values(
                document='{"apiVersion":"devskyy.dev/v1","kind":"Agent",'
                '"metadata":{"name":"a"},"spec":{"module":"x:Y","priority":"urgent"}}'
            )
        )
    with pytest.raises(StateError) as info:
        store.live()
    assert str(info.value) == (
        "stored Agent/a is not a valid manifest (Input should be 'critical', 'high', "
        "'medium' or 'low'); re-apply the manifests or roll back"
    )
    assert [m.name for m in store.snapshot(1)] == ["a"]
    engine.dispose()
