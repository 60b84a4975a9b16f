"""The reconcile loop's one pass: manifests → validate → plan → apply, plus rollback.

``Reconciler`` wires the pure planner to a ``StateStore``: it loads and validates the
tree (a tree with any problem raises ``ManifestError`` before the store is touched),
plans against live state, and applies the plan in one transaction as the next
numbered revision with the tree's git commit and dirty flag. A plan without changes
records nothing. ``rollback(N)`` plans revision N's snapshot against live state with
pruning and applies that as a new revision marked "rollback of N".

A revision and its ``manifests.applied`` audit event are one transaction: with
``audit_actor`` set, the store's apply chains the event onto the audit log inside its own
transaction (``audit_in_apply``), so a crash can never leave a revision without its event
(``audit --verify`` checks that every revision has one).

After each applied revision the ``on_applied`` hooks run with the revision and the
plan (the runtime rebuilds itself, the security manager reloads roles). The revision is
already committed when they run: a failing hook is reported as a ``StateError`` that
names the revision, it does not undo it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from devskyy.adapters.clock import Clock, SystemClock
from devskyy.adapters.git_info import git_info
from devskyy.adapters.security_store import append_audit_in
from devskyy.adapters.state_store import StateStore
from devskyy.core.audit import GENESIS, chain
from devskyy.core.plan import plan
from devskyy.errors import StateError
from devskyy.model.plan import ApplyMeta, Plan, Revision
from devskyy.model.resources import ResourceSet
from devskyy.model.security import AuditEvent, EventType, Outcome
from devskyy.runtime.manifests import load_desired

if TYPE_CHECKING:
    from devskyy.adapters.state_store import InApply, Transaction

AppliedHook = Callable[[Revision, Plan], None]


def applied_event(revision: Revision, actor: str) -> AuditEvent:
    """The ``manifests.applied`` event of ``revision``: its number, source and counts."""
    details: dict[str, object] = {"revision": revision.number, "source": revision.source}
    details.update({k: v for k, v in revision.summary.items() if k != "unchanged"})
    if revision.rollback_of is not None:
        details["rollback_of"] = revision.rollback_of
    return AuditEvent(
        revision.created_at.timestamp(),
        actor,
        EventType.MANIFESTS_APPLIED,
        "manifests",
        Outcome.SUCCESS,
        details,
    )


def audit_in_apply(actor: str) -> InApply:
    """Chain ``revision``'s audit event onto the log inside the apply's transaction."""

    def write(conn: Transaction, revision: Revision) -> None:
        event = applied_event(revision, actor)
        append_audit_in(conn, lambda head: chain([event], *(head or (0, GENESIS))))

    return write


@dataclass(frozen=True)
class ApplyResult:
    """The plan that was (or, in a dry run, would be) applied and the revision it made.

    ``revision`` is None when nothing was written (no changes, or a dry run);
    ``live_revision`` is the latest revision number after the call.
    """

    plan: Plan
    revision: Revision | None
    live_revision: int | None
    dry_run: bool = False
    rollback_of: int | None = None

    @property
    def applied(self) -> bool:
        return self.revision is not None


def load_tree(path: Path, allowed_prefixes: Sequence[str] | None = None) -> ResourceSet:
    """The validated desired state under ``path`` (``ManifestError`` lists every problem)."""
    return load_desired(path, allowed_prefixes=allowed_prefixes)


@dataclass
class Reconciler:
    """One store, one clock, and the hooks to run after each applied revision."""

    store: StateStore
    clock: Clock = field(default_factory=SystemClock)
    on_applied: list[AppliedHook] = field(default_factory=list)
    allowed_prefixes: Sequence[str] | None = None
    audit_actor: str | None = None  # set: each revision commits with its audit event
    # The watch daemon's lease check (DaemonLease.fence): runs inside each apply's
    # transaction, so a daemon whose lease was taken over can never commit a revision.
    fence: Callable[[Transaction], None] | None = None

    def plan_tree(self, path: Path, *, prune: bool = False) -> Plan:
        """The plan that ``apply_tree`` would run now."""
        return plan(load_tree(path, self.allowed_prefixes), self.store.live(), prune=prune)

    def apply_tree(self, path: Path, *, prune: bool = False, dry_run: bool = False) -> ApplyResult:
        """Validate the tree at ``path`` and make live state match it."""
        desired = load_tree(path, self.allowed_prefixes)
        return self.apply_desired(desired, source=str(path), prune=prune, dry_run=dry_run)

    def apply_desired(
        self,
        desired: ResourceSet,
        *,
        source: str,
        prune: bool = False,
        dry_run: bool = False,
        git_path: Path | None = None,
    ) -> ApplyResult:
        """Apply an already validated desired state (the daemon loads it itself)."""
        the_plan = plan(desired, self.store.live(), prune=prune)
        current = self.store.current_revision()
        if dry_run or not the_plan.has_changes:
            return ApplyResult(the_plan, None, current, dry_run=dry_run)
        info = git_info(git_path or Path(source))
        meta = ApplyMeta(
            created_at=self._now(),
            source=source,
            git_commit=info.commit if info else None,
            git_dirty=info.dirty if info else None,
        )
        revision = self.store.apply(the_plan, meta, within=self._within())
        self._notify(revision, the_plan)
        return ApplyResult(the_plan, revision, revision.number)

    def rollback(self, number: int, *, dry_run: bool = False) -> ApplyResult:
        """Re-apply revision ``number``'s snapshot as a new revision (pruning the rest)."""
        target = self.store.snapshot(number)
        original = next(r for r in self.store.revisions() if r.number == number)
        the_plan = plan(target, self.store.live(), prune=True)
        current = self.store.current_revision()
        if dry_run or not the_plan.has_changes:
            return ApplyResult(the_plan, None, current, dry_run=dry_run, rollback_of=number)
        meta = ApplyMeta(
            created_at=self._now(),
            source=original.source,
            git_commit=original.git_commit,
            git_dirty=original.git_dirty,
            rollback_of=number,
        )
        revision = self.store.apply(the_plan, meta, within=self._within())
        self._notify(revision, the_plan)
        return ApplyResult(the_plan, revision, revision.number, rollback_of=number)

    def _within(self) -> InApply | None:
        audit = None if self.audit_actor is None else audit_in_apply(self.audit_actor)
        fence = self.fence
        if fence is None:
            return audit

        def fenced(transaction: Transaction, revision: Revision) -> None:
            fence(transaction)
            if audit is not None:
                audit(transaction, revision)

        return fenced

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now(), tz=UTC)

    def _notify(self, revision: Revision, the_plan: Plan) -> None:
        for hook in self.on_applied:
            try:
                hook(revision, the_plan)
            except Exception as exc:
                name = getattr(hook, "__qualname__", repr(hook))
                raise StateError(
                    f"revision {revision.number} was applied, but the on_applied hook "
                    f"{name} failed: {type(exc).__name__}: {exc}"
                ) from exc


def plan_tree(path: Path, store: StateStore, prune: bool = False) -> Plan:
    """The plan of the tree at ``path`` against ``store``'s live state."""
    return Reconciler(store).plan_tree(path, prune=prune)


def apply_tree(
    path: Path,
    store: StateStore,
    *,
    prune: bool = False,
    dry_run: bool = False,
    clock: Clock | None = None,
    on_applied: Sequence[AppliedHook] = (),
    audit_actor: str | None = None,
) -> ApplyResult:
    """Validate, plan and apply the tree at ``path`` (see ``Reconciler.apply_tree``).

    ``audit_actor`` (with a SQL store): each revision commits with its audit event.
    """
    reconciler = Reconciler(store, clock or SystemClock(), list(on_applied))
    reconciler.audit_actor = audit_actor
    return reconciler.apply_tree(path, prune=prune, dry_run=dry_run)


def rollback(
    store: StateStore,
    number: int,
    *,
    dry_run: bool = False,
    clock: Clock | None = None,
    on_applied: Sequence[AppliedHook] = (),
    audit_actor: str | None = None,
) -> ApplyResult:
    """Re-apply revision ``number`` as a new revision (see ``Reconciler.rollback``)."""
    reconciler = Reconciler(store, clock or SystemClock(), list(on_applied))
    reconciler.audit_actor = audit_actor
    return reconciler.rollback(number, dry_run=dry_run)
