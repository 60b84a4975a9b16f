"""One contract over both state stores: SQL (SQLite file) and the in-memory twin."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from planner_strategies import agent, role, rs
from sqlalchemy import Engine, select, text

from devskyy.adapters.db import open_engine
from devskyy.adapters.state_store import (
    MemoryStateStore,
    SqlStateStore,
    StateStore,
    resources_table,
    revisions_table,
)
from devskyy.core.plan import canonical, plan
from devskyy.errors import RevisionNotFound, StateError
from devskyy.model.plan import Action, ApplyMeta, Change, Plan
from devskyy.model.resources import ResourceKey, ResourceSet, document

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def meta(source: str = "manifests", **kw: object) -> ApplyMeta:
    return ApplyMeta(created_at=kw.pop("created_at", T0), source=source, **kw)  # type: ignore[arg-type]


@pytest.fixture(params=["sql", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    if request.param == "memory":
        yield MemoryStateStore()
        return
    engine = open_engine(f"sqlite:///{tmp_path / 'state.db'}")
    yield SqlStateStore(engine)
    engine.dispose()


def test_a_new_store_is_empty(store: StateStore) -> None:
    assert len(store.live()) == 0
    assert store.revisions() == []
    assert store.current_revision() is None
    assert store.resource_revision(ResourceKey("Agent", "a")) is None


def test_apply_writes_resources_and_a_numbered_revision(store: StateStore) -> None:
    desired = rs(agent("b"), role("r"), agent("a", replicas=2))
    rev = store.apply(plan(desired, store.live()), meta(git_commit="abc123", git_dirty=False))
    assert rev.number == 1
    assert rev.created_at == T0
    assert rev.source == "manifests"
    assert (rev.git_commit, rev.git_dirty, rev.rollback_of) == ("abc123", False, None)
    assert rev.summary == {"created": 3, "updated": 0, "deleted": 0, "unchanged": 0}
    live = store.live()
    assert [str(k) for k in (ResourceKey(m.kind, m.name) for m in live)] == [
        "Role/r",
        "Agent/a",
        "Agent/b",
    ]
    assert canonical(live) == canonical(desired)
    assert store.revisions() == [rev]
    assert store.current_revision() == 1
    assert store.resource_revision(ResourceKey("Agent", "a")) == 1


def test_revision_numbers_grow_and_track_what_each_wrote(store: StateStore) -> None:
    store.apply(plan(rs(agent("a"), agent("b")), store.live()), meta())
    second = plan(rs(agent("a", replicas=3), agent("c")), store.live(), prune=True)
    rev = store.apply(second, meta(created_at=T0 + timedelta(hours=1), rollback_of=1))
    assert rev.number == 2
    assert rev.summary == {"created": 1, "updated": 1, "deleted": 1, "unchanged": 0}
    assert rev.rollback_of == 1
    assert [r.number for r in store.revisions()] == [1, 2]
    assert store.revisions()[1].created_at == T0 + timedelta(hours=1)
    assert sorted(m.name for m in store.live()) == ["a", "c"]
    assert store.resource_revision(ResourceKey("Agent", "a")) == 2
    assert store.resource_revision(ResourceKey("Agent", "b")) is None


def test_snapshots_keep_each_revision_state(store: StateStore) -> None:
    first = rs(agent("a"), agent("b"))
    store.apply(plan(first, store.live()), meta())
    store.apply(plan(rs(agent("a", replicas=4)), store.live(), prune=True), meta())
    assert canonical(store.snapshot(1)) == canonical(first)
    assert [m.name for m in store.snapshot(2)] == ["a"]
    with pytest.raises(RevisionNotFound, match=r"^revision 7 does not exist$"):
        store.snapshot(7)


def test_a_failure_mid_apply_leaves_nothing(store: StateStore) -> None:
    store.apply(plan(rs(agent("taken")), store.live()), meta())
    before_live = canonical(store.live())
    # first change is fine, second collides with an existing row: nothing may stick
    bad = Plan(
        (
            Change(ResourceKey("Agent", "fresh"), Action.CREATE, None, document(agent("fresh"))),
            Change(ResourceKey("Agent", "taken"), Action.CREATE, None, document(agent("taken"))),
        )
    )
    with pytest.raises(
        StateError, match=r"^live state changed since the plan: Agent/taken already exists$"
    ):
        store.apply(bad, meta())
    assert canonical(store.live()) == before_live
    assert [r.number for r in store.revisions()] == [1]
    assert store.current_revision() == 1


def test_a_stale_plan_is_refused(store: StateStore) -> None:
    store.apply(plan(rs(agent("a")), store.live()), meta())
    stale = plan(rs(agent("a", replicas=2)), store.live())
    store.apply(plan(rs(agent("a", replicas=5)), store.live()), meta())
    with pytest.raises(
        StateError, match=r"^live state changed since the plan: Agent/a was modified$"
    ):
        store.apply(stale, meta())
    gone = plan(ResourceSet(), store.live(), prune=True)
    store.apply(gone, meta())
    with pytest.raises(StateError, match=r"no longer exists$"):
        store.apply(stale, meta())
    assert [r.number for r in store.revisions()] == [1, 2, 3]


def test_stored_documents_are_copies(store: StateStore) -> None:
    desired = rs(agent("a", config={"k": [1]}))
    p = plan(desired, store.live())
    store.apply(p, meta())
    assert p.changes[0].after is not None
    p.changes[0].after["spec"]["config"]["k"].append(2)
    assert store.live().agents[0].spec.config == {"k": [1]}


def test_naive_meta_times_are_treated_as_utc(store: StateStore) -> None:
    naive = datetime(2026, 5, 1, 12, 0, 0)
    rev = store.apply(plan(rs(agent("a")), store.live()), meta(created_at=naive))
    assert rev.created_at == datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert store.revisions()[0].created_at == rev.created_at


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
