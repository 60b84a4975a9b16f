"""The contract every ``StateStore`` keeps; each implementation's tests subclass it.

``tests/test_state_store.py`` runs it over SQLite and the in-memory twin,
``tests/test_state_store_postgres.py`` over a real PostgreSQL server. A subclass only
provides the ``store`` fixture (a fresh, empty store per test).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from planner_strategies import agent, role, rs

from devskyy.adapters.state_store import StateStore
from devskyy.core.plan import canonical, plan
from devskyy.errors import RevisionNotFound, StateError
from devskyy.model.plan import Action, ApplyMeta, Change, Plan
from devskyy.model.resources import ResourceKey, ResourceSet, document

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def meta(source: str = "manifests", **kw: object) -> ApplyMeta:
    return ApplyMeta(created_at=kw.pop("created_at", T0), source=source, **kw)  # type: ignore[arg-type]


class StoreContract:
    """Behaviour shared by every store: apply, revisions, snapshots, atomicity, staleness."""

    def test_a_new_store_is_empty(self, store: StateStore) -> None:
        assert len(store.live()) == 0
        assert store.revisions() == []
        assert store.current_revision() is None
        assert store.resource_revision(ResourceKey("Agent", "a")) is None

    def test_apply_writes_resources_and_a_numbered_revision(self, store: StateStore) -> None:
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

    def test_revision_numbers_grow_and_track_what_each_wrote(self, store: StateStore) -> None:
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

    def test_latest_revision_is_the_last_of_revisions(self, store: StateStore) -> None:
        assert store.latest_revision() is None
        store.apply(plan(rs(agent("a")), store.live()), meta(git_commit="c1", git_dirty=True))
        later = T0 + timedelta(minutes=5)
        second = plan(rs(agent("a"), role("r")), store.live())
        store.apply(second, meta("rollback", created_at=later, rollback_of=1))
        latest = store.latest_revision()
        assert latest == store.revisions()[-1]
        assert latest is not None
        assert (latest.number, latest.created_at, latest.source) == (2, later, "rollback")
        assert (latest.git_commit, latest.git_dirty, latest.rollback_of) == (None, None, 1)
        assert latest.summary == {"created": 1, "updated": 0, "deleted": 0, "unchanged": 1}

    def test_revision_reads_one_revision_by_number(self, store: StateStore) -> None:
        assert store.revision(1) is None
        store.apply(plan(rs(agent("a")), store.live()), meta(git_commit="c1", git_dirty=True))
        later = T0 + timedelta(minutes=5)
        second = plan(rs(agent("a"), role("r")), store.live())
        store.apply(second, meta("rollback", created_at=later, rollback_of=1))
        assert [store.revision(n) for n in (1, 2)] == store.revisions()
        first = store.revision(1)
        assert first is not None
        assert (first.number, first.created_at, first.source) == (1, T0, "manifests")
        assert (first.git_commit, first.git_dirty, first.rollback_of) == ("c1", True, None)
        assert first.summary == {"created": 1, "updated": 0, "deleted": 0, "unchanged": 0}
        assert [store.revision(n) for n in (0, -1, 3)] == [None, None, None]

    def test_snapshots_keep_each_revision_state(self, store: StateStore) -> None:
        first = rs(agent("a"), agent("b"))
        store.apply(plan(first, store.live()), meta())
        store.apply(plan(rs(agent("a", replicas=4)), store.live(), prune=True), meta())
        assert canonical(store.snapshot(1)) == canonical(first)
        assert [m.name for m in store.snapshot(2)] == ["a"]
        with pytest.raises(RevisionNotFound, match=r"^revision 7 does not exist$"):
            store.snapshot(7)

    def test_a_failure_mid_apply_leaves_nothing(self, store: StateStore) -> None:
        store.apply(plan(rs(agent("taken")), store.live()), meta())
        before_live = canonical(store.live())
        # first change is fine, second collides with an existing row: nothing may stick
        bad = Plan(
            (
                Change(
                    ResourceKey("Agent", "fresh"), Action.CREATE, None, document(agent("fresh"))
                ),
                Change(
                    ResourceKey("Agent", "taken"), Action.CREATE, None, document(agent("taken"))
                ),
            )
        )
        with pytest.raises(
            StateError, match=r"^live state changed since the plan: Agent/taken already exists$"
        ):
            store.apply(bad, meta())
        assert canonical(store.live()) == before_live
        assert [r.number for r in store.revisions()] == [1]
        assert store.current_revision() == 1

    def test_a_stale_plan_is_refused(self, store: StateStore) -> None:
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

    def test_stored_documents_are_copies(self, store: StateStore) -> None:
        desired = rs(agent("a", config={"k": [1]}))
        p = plan(desired, store.live())
        store.apply(p, meta())
        assert p.changes[0].after is not None
        p.changes[0].after["spec"]["config"]["k"].append(2)
        assert store.live().agents[0].spec.config == {"k": [1]}

    def test_naive_meta_times_are_treated_as_utc(self, store: StateStore) -> None:
        naive = datetime(2026, 5, 1, 12, 0, 0)
        rev = store.apply(plan(rs(agent("a")), store.live()), meta(created_at=naive))
        assert rev.created_at == datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
        assert store.revisions()[0].created_at == rev.created_at
