"""The reconciler over real manifest trees and a SQLite store: apply, no-op, prune,
invalid trees, rollback, git provenance and the ``on_applied`` hooks."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.git_info import GitInfo, git_info
from devskyy.adapters.state_sql import resources_table
from devskyy.adapters.state_store import SqlStateStore
from devskyy.errors import ManifestError, RevisionNotFound, StateError
from devskyy.model.plan import Action, Plan, Revision
from devskyy.runtime.reconciler import Reconciler, apply_tree, plan_tree, rollback

AGENT = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: {name}
spec:
  module: devskyy.agents.{name}:Agent
  priority: {priority}
  dependencies: {deps}
"""


def write_agent(root: Path, name: str, priority: str = "medium", deps: str = "[]") -> None:
    (root / "agents").mkdir(parents=True, exist_ok=True)
    text = AGENT.format(name=name, priority=priority, deps=deps)
    (root / "agents" / f"{name}.yaml").write_text(text, encoding="utf-8")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "manifests"
    write_agent(root, "scanner", "high")
    write_agent(root, "fixer", deps="[scanner]")
    return root


@pytest.fixture
def store(engine: Engine) -> SqlStateStore:
    return SqlStateStore(engine)


def rows(engine: Engine) -> list[tuple[str, str, str, int]]:
    t = resources_table
    with engine.connect() as conn:
        result = conn.execute(select(t.c.kind, t.c.name, t.c.document, t.c.revision))
        return sorted((r.kind, r.name, r.document, r.revision) for r in result)


def test_first_apply_creates_everything_as_revision_1(
    tree: Path, store: SqlStateStore, clock: FakeClock
) -> None:
    result = apply_tree(tree, store, clock=clock)
    assert result.applied
    assert result.revision is not None
    assert result.revision.number == 1
    assert result.live_revision == 1
    assert result.revision.created_at == datetime.fromtimestamp(clock.now(), tz=UTC)
    assert result.revision.source == str(tree)
    assert result.revision.summary == {"created": 2, "updated": 0, "deleted": 0, "unchanged": 0}
    assert [(c.action, str(c.key)) for c in result.plan] == [
        (Action.CREATE, "Agent/fixer"),
        (Action.CREATE, "Agent/scanner"),
    ]
    assert sorted(m.name for m in store.live()) == ["fixer", "scanner"]


def test_applying_the_same_tree_again_changes_nothing(
    tree: Path, store: SqlStateStore, engine: Engine, clock: FakeClock
) -> None:
    apply_tree(tree, store, clock=clock)
    before = rows(engine)
    again = apply_tree(tree, store, clock=clock)
    assert not again.applied
    assert not again.plan.has_changes
    assert again.live_revision == 1
    assert [r.number for r in store.revisions()] == [1]
    assert rows(engine) == before


def test_an_edit_is_an_update_with_a_field_diff(
    tree: Path, store: SqlStateStore, clock: FakeClock
) -> None:
    apply_tree(tree, store, clock=clock)
    write_agent(tree, "fixer", priority="critical", deps="[scanner]")
    planned = plan_tree(tree, store)
    assert [(str(c.key), c.action) for c in planned.pending] == [("Agent/fixer", Action.UPDATE)]
    (change,) = planned.pending
    assert [(f.path, f.before, f.after) for f in change.fields] == [
        ("spec.priority", "medium", "critical")
    ]
    clock.advance(60)
    result = apply_tree(tree, store, clock=clock)
    assert result.revision is not None
    assert result.revision.number == 2
    assert result.revision.summary == {"created": 0, "updated": 1, "deleted": 0, "unchanged": 1}
    fixer = store.live().get("Agent", "fixer")
    assert fixer is not None
    assert fixer.spec.priority.value == "critical"  # type: ignore[union-attr]


def test_an_invalid_tree_applies_nothing_and_leaves_rows_byte_for_byte(
    tree: Path, store: SqlStateStore, engine: Engine, tmp_path: Path, clock: FakeClock
) -> None:
    apply_tree(tree, store, clock=clock)
    db_file = tmp_path / "state.db"
    before_rows = rows(engine)
    write_agent(tree, "newbie")  # a valid addition…
    write_agent(tree, "fixer", deps="[ghost]")  # …and a broken reference in the same tree
    with pytest.raises(ManifestError) as info:
        apply_tree(tree, store, clock=clock)
    (problem,) = info.value.problems
    assert str(problem).endswith(
        "agents/fixer.yaml:8:18: spec.dependencies[0]: unknown agent 'ghost'"
    )
    assert rows(engine) == before_rows
    assert [r.number for r in store.revisions()] == [1]
    engine.dispose()
    digest = hashlib.sha256(db_file.read_bytes()).hexdigest()
    with pytest.raises(ManifestError):
        apply_tree(tree, store, clock=clock)
    engine.dispose()
    assert hashlib.sha256(db_file.read_bytes()).hexdigest() == digest


def test_without_prune_removed_files_leave_orphans(
    tree: Path, store: SqlStateStore, clock: FakeClock
) -> None:
    apply_tree(tree, store, clock=clock)
    (tree / "agents" / "fixer.yaml").unlink()
    result = apply_tree(tree, store, clock=clock)
    assert not result.applied
    assert [str(c.key) for c in result.plan.orphans] == ["Agent/fixer"]
    assert sorted(m.name for m in store.live()) == ["fixer", "scanner"]


def test_prune_deletes_what_the_manifests_no_longer_name(
    tree: Path, store: SqlStateStore, clock: FakeClock
) -> None:
    apply_tree(tree, store, clock=clock)
    (tree / "agents" / "fixer.yaml").unlink()
    result = apply_tree(tree, store, prune=True, clock=clock)
    assert result.revision is not None
    assert result.revision.summary == {"created": 0, "updated": 0, "deleted": 1, "unchanged": 1}
    assert [m.name for m in store.live()] == ["scanner"]


def test_dry_run_writes_nothing(
    tree: Path, store: SqlStateStore, engine: Engine, clock: FakeClock
) -> None:
    result = apply_tree(tree, store, dry_run=True, clock=clock)
    assert result.dry_run
    assert not result.applied
    assert result.plan.creates == 2
    assert result.plan == plan_tree(tree, store)
    assert rows(engine) == []
    assert store.revisions() == []


def test_rollback_reapplies_a_snapshot_as_a_new_revision(
    tree: Path, store: SqlStateStore, clock: FakeClock
) -> None:
    apply_tree(tree, store, clock=clock)  # 1: scanner(high), fixer
    write_agent(tree, "scanner", "low")
    write_agent(tree, "extra")
    clock.advance(10)
    apply_tree(tree, store, clock=clock)  # 2: scanner(low), fixer, extra
    clock.advance(10)
    result = rollback(store, 1, clock=clock)
    assert result.revision is not None
    assert result.revision.number == 3
    assert result.revision.rollback_of == 1
    assert result.rollback_of == 1
    assert result.revision.summary == {"created": 0, "updated": 1, "deleted": 1, "unchanged": 1}
    assert {m.name: m.spec.priority.value for m in store.live().agents} == {
        "fixer": "medium",
        "scanner": "high",
    }
    assert [(r.number, r.rollback_of) for r in store.revisions()] == [(1, None), (2, None), (3, 1)]
    # rolling back to what is already live changes nothing
    again = rollback(store, 3, clock=clock)
    assert not again.applied
    assert again.live_revision == 3


def test_rollback_to_an_unknown_revision(store: SqlStateStore) -> None:
    with pytest.raises(RevisionNotFound, match=r"^revision 4 does not exist$"):
        rollback(store, 4)


def test_hooks_see_each_applied_revision_and_plan(
    tree: Path, store: SqlStateStore, clock: FakeClock
) -> None:
    seen: list[tuple[int, int]] = []

    def hook(revision: Revision, plan: Plan) -> None:
        seen.append((revision.number, plan.creates))

    reconciler = Reconciler(store, clock, on_applied=[hook])
    reconciler.apply_tree(tree)
    reconciler.apply_tree(tree)  # no changes: no revision, no call
    reconciler.apply_tree(tree, dry_run=True)
    write_agent(tree, "extra")
    reconciler.apply_tree(tree)
    reconciler.rollback(1)
    assert seen == [(1, 2), (2, 1), (3, 0)]


def test_a_failing_hook_names_the_committed_revision(
    tree: Path, store: SqlStateStore, clock: FakeClock
) -> None:
    def broken(revision: Revision, plan: Plan) -> None:
        raise RuntimeError("audit down")

    with pytest.raises(StateError) as info:
        apply_tree(tree, store, clock=clock, on_applied=[broken])
    assert str(info.value) == (
        "revision 1 was applied, but the on_applied hook "
        "test_a_failing_hook_names_the_committed_revision.<locals>.broken failed: "
        "RuntimeError: audit down"
    )
    assert store.current_revision() == 1


# -- git provenance -----------------------------------------------------------------------

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


@needs_git
def test_git_commit_and_dirty_flag_are_recorded(
    tree: Path, store: SqlStateStore, clock: FakeClock
) -> None:
    repo = tree.parent
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    head = git(repo, "rev-parse", "HEAD")
    first = apply_tree(tree, store, clock=clock)
    assert first.revision is not None
    assert (first.revision.git_commit, first.revision.git_dirty) == (head, False)
    write_agent(tree, "extra")  # untracked file inside the applied tree
    second = apply_tree(tree, store, clock=clock)
    assert second.revision is not None
    assert (second.revision.git_commit, second.revision.git_dirty) == (head, True)
    back = rollback(store, 1, clock=clock)
    assert back.revision is not None
    assert (back.revision.git_commit, back.revision.git_dirty) == (head, False)


@needs_git
def test_git_dirty_only_counts_the_applied_path(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "a.yaml").write_text("x: 1\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "first")
    (tmp_path / "README").write_text("elsewhere\n")
    info = git_info(tmp_path / "manifests")
    assert info == GitInfo(git(tmp_path, "rev-parse", "HEAD"), dirty=False)
    assert git_info(tmp_path) == GitInfo(info.commit if info else None, dirty=True)


@needs_git
def test_git_info_in_a_repository_without_commits(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    (tmp_path / "a.yaml").write_text("x: 1\n")
    assert git_info(tmp_path) == GitInfo(None, dirty=True)


def test_git_info_outside_git_is_none(tmp_path: Path, tree: Path, store: SqlStateStore) -> None:
    assert git_info(tmp_path / "does-not-exist") is None
    if git_info(tmp_path) is None:  # tmp dirs normally live outside any work tree
        result = apply_tree(tree, store)
        assert result.revision is not None
        assert (result.revision.git_commit, result.revision.git_dirty) == (None, None)


def test_the_shipped_manifests_apply(repo_root: Path, store: SqlStateStore) -> None:
    shipped = repo_root / "manifests"
    if not any(shipped.rglob("*.yaml")):
        pytest.skip("no shipped manifests yet")
    result = apply_tree(shipped, store, clock=FakeClock())
    assert result.revision is not None
    assert result.revision.summary["created"] == len(store.live())
    names = {m.name for m in store.live().agents}
    assert {"scanner", "fixer", "security"} <= names
    assert not apply_tree(shipped, store).applied
