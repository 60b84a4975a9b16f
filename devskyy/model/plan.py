"""Plans and revisions: the values that ``plan`` returns and ``apply`` records.

A ``Plan`` lists one ``Change`` per resource (desired or live): create, update,
delete or unchanged, with a field-level diff for updates. Live resources that the
manifests no longer name are kept unless the plan prunes: they appear as
``unchanged`` changes flagged ``orphaned`` (kubectl's ``apply`` without ``--prune``),
so the user sees them without anything being deleted.

A ``Revision`` is one applied plan, numbered 1, 2, 3… with the git commit of the
manifests when they live in a git work tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

from devskyy.model.resources import ResourceKey


class Action(StrEnum):
    """What applying a plan does to one resource."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    UNCHANGED = "unchanged"


class _Absent(Enum):
    """The marker of a field that does not exist on one side of a diff."""

    ABSENT = "absent"

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent.ABSENT


@dataclass(frozen=True)
class FieldChange:
    """One changed field: its dotted path (``spec.retry.maxAttempts``) and both values.

    ``before`` is ``ABSENT`` for an added field and ``after`` is ``ABSENT`` for a removed one.
    List items are addressed by index (``spec.steps[1].needs``) and keys that are not
    plain identifiers are quoted (``metadata.labels["app.kubernetes.io/name"]``).
    """

    path: str
    before: Any
    after: Any

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.before is not ABSENT:
            out["before"] = self.before
        if self.after is not ABSENT:
            out["after"] = self.after
        return out


@dataclass(frozen=True)
class Change:
    """What happens to one resource; ``before``/``after`` are canonical documents."""

    key: ResourceKey
    action: Action
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    fields: tuple[FieldChange, ...] = ()
    orphaned: bool = False

    @property
    def kind(self) -> str:
        return self.key.kind

    @property
    def name(self) -> str:
        return self.key.name

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.key.kind,
            "name": self.key.name,
            "action": self.action.value,
        }
        if self.orphaned:
            out["orphaned"] = True
        if self.action is Action.UPDATE:
            out["fields"] = [f.to_json() for f in self.fields]
        if self.action in (Action.UPDATE, Action.DELETE):
            out["before"] = self.before
        if self.action in (Action.CREATE, Action.UPDATE):
            out["after"] = self.after
        return out


@dataclass(frozen=True)
class Plan:
    """Every change, in apply order (kinds in ``KIND_ORDER``, then names)."""

    changes: tuple[Change, ...] = ()
    prune: bool = False

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action is action)

    @property
    def creates(self) -> int:
        return self.count(Action.CREATE)

    @property
    def updates(self) -> int:
        return self.count(Action.UPDATE)

    @property
    def deletes(self) -> int:
        return self.count(Action.DELETE)

    @property
    def unchanged(self) -> int:
        return self.count(Action.UNCHANGED)

    @property
    def orphans(self) -> tuple[Change, ...]:
        """Live resources the manifests no longer name, kept because the plan does not prune."""
        return tuple(c for c in self.changes if c.orphaned)

    @property
    def has_changes(self) -> bool:
        return any(c.action is not Action.UNCHANGED for c in self.changes)

    @property
    def pending(self) -> tuple[Change, ...]:
        """The changes that write something."""
        return tuple(c for c in self.changes if c.action is not Action.UNCHANGED)

    def summary(self) -> dict[str, int]:
        """Counts per action (``create``/``update``/``delete``/``unchanged``)."""
        return {a.value: self.count(a) for a in Action}

    def to_json(self) -> dict[str, Any]:
        return {
            "hasChanges": self.has_changes,
            "prune": self.prune,
            "summary": self.summary(),
            "orphaned": [str(c.key) for c in self.orphans],
            "changes": [c.to_json() for c in self.changes],
        }


@dataclass(frozen=True)
class ApplyMeta:
    """What a store records with an applied plan besides the plan itself."""

    created_at: datetime
    source: str
    git_commit: str | None = None
    git_dirty: bool | None = None
    rollback_of: int | None = None


@dataclass(frozen=True)
class Revision:
    """One applied plan: ``summary`` counts created/updated/deleted/unchanged resources."""

    number: int
    created_at: datetime
    source: str
    git_commit: str | None = None
    git_dirty: bool | None = None
    summary: dict[str, int] = field(default_factory=dict)
    rollback_of: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "revision": self.number,
            "createdAt": self.created_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "source": self.source,
            "gitCommit": self.git_commit,
            "gitDirty": self.git_dirty,
            "summary": dict(self.summary),
            "rollbackOf": self.rollback_of,
        }


def revision_summary(plan: Plan) -> dict[str, int]:
    """The counts a revision records for the plan it applied."""
    return {
        "created": plan.creates,
        "updated": plan.updates,
        "deleted": plan.deletes,
        "unchanged": plan.unchanged,
    }
