"""The live state: applied resources and numbered revisions, behind ``StateStore``.

``SqlStateStore`` keeps them in two tables (SQLite by default, PostgreSQL through the
same SQLAlchemy URL); ``MemoryStateStore`` is the in-memory twin for tests. One contract
test (``tests/test_state_store.py``) runs over both.

``apply(plan, meta)`` is the only writer and is all or nothing: it checks each change
against what is stored (a create finds no row, an update or delete finds exactly the
document the plan was computed from), so a plan made against a state that has since
moved fails with ``StateError`` instead of overwriting someone else's apply. Every
revision keeps the full snapshot of live state after it, which ``rollback`` re-applies.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Integer,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from devskyy.adapters.db import metadata
from devskyy.errors import RevisionNotFound, StateError
from devskyy.model.plan import Action, ApplyMeta, Change, Plan, Revision, revision_summary
from devskyy.model.resources import KIND_ORDER, ResourceKey, ResourceSet, from_document

resources_table = Table(
    "resources",
    metadata,
    Column("kind", String(32), primary_key=True),
    Column("name", String(63), primary_key=True),
    Column("document", Text, nullable=False),
    Column("revision", Integer, nullable=False),
)

revisions_table = Table(
    "revisions",
    metadata,
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("source", Text, nullable=False),
    Column("git_commit", String(64), nullable=True),
    Column("git_dirty", Boolean, nullable=True),
    Column("rollback_of", Integer, nullable=True),
    Column("summary", Text, nullable=False),
    Column("snapshot", Text, nullable=False),
)


class StateStore(Protocol):
    """Where live state and its history are kept."""

    def live(self) -> ResourceSet:
        """Every applied resource, in apply order."""
        ...

    def current_revision(self) -> int | None:
        """The number of the latest revision, None before the first apply."""
        ...

    def resource_revision(self, key: ResourceKey) -> int | None:
        """The revision that last wrote ``key``, None if it is not live."""
        ...

    def apply(self, plan: Plan, meta: ApplyMeta) -> Revision:
        """Write every pending change of ``plan`` as the next revision, all or nothing."""
        ...

    def revisions(self) -> list[Revision]:
        """Every revision, oldest first."""
        ...

    def snapshot(self, number: int) -> ResourceSet:
        """Live state as revision ``number`` left it; ``RevisionNotFound`` if unknown."""
        ...


def encode(doc: dict[str, Any]) -> str:
    """The stored text of a document: compact, keys sorted, so equal documents are equal text."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def _order(key: ResourceKey) -> tuple[int, str]:
    rank = KIND_ORDER.index(key.kind) if key.kind in KIND_ORDER else len(KIND_ORDER)
    return (rank, key.name)


def _resource_set(docs: dict[ResourceKey, dict[str, Any]]) -> ResourceSet:
    return ResourceSet(tuple(from_document(docs[k]) for k in sorted(docs, key=_order)))


def _conflict(change: Change, found: dict[str, Any] | None) -> StateError | None:
    """Why ``change`` cannot be written over ``found`` (the stored document), if it cannot."""
    if change.action is Action.CREATE and found is not None:
        return StateError(f"live state changed since the plan: {change.key} already exists")
    if change.action in (Action.UPDATE, Action.DELETE):
        if found is None:
            return StateError(f"live state changed since the plan: {change.key} no longer exists")
        if change.before is not None and encode(found) != encode(change.before):
            return StateError(f"live state changed since the plan: {change.key} was modified")
    return None


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SqlStateStore:
    """Live state in the SQL store (the ``resources`` and ``revisions`` tables)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _docs(self) -> dict[ResourceKey, dict[str, Any]]:
        t = resources_table
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.kind, t.c.name, t.c.document)).all()
        return {ResourceKey(r.kind, r.name): json.loads(r.document) for r in rows}

    def live(self) -> ResourceSet:
        return _resource_set(self._docs())

    def current_revision(self) -> int | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(func.max(revisions_table.c.number))).scalar()
        return None if value is None else int(value)

    def resource_revision(self, key: ResourceKey) -> int | None:
        t = resources_table
        query = select(t.c.revision).where(t.c.kind == key.kind, t.c.name == key.name)
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else int(value)

    def apply(self, plan: Plan, meta: ApplyMeta) -> Revision:
        t = resources_table
        try:
            with self.engine.begin() as conn:
                latest = conn.execute(select(func.max(revisions_table.c.number))).scalar()
                number = int(latest or 0) + 1
                for change in plan.pending:
                    where = (t.c.kind == change.key.kind, t.c.name == change.key.name)
                    text = conn.execute(select(t.c.document).where(*where)).scalar()
                    problem = _conflict(change, None if text is None else json.loads(text))
                    if problem is not None:
                        raise problem
                    if change.action is Action.DELETE:
                        conn.execute(delete(t).where(*where))
                        continue
                    assert change.after is not None
                    values = {"document": encode(change.after), "revision": number}
                    if change.action is Action.CREATE:
                        key = {"kind": change.key.kind, "name": change.key.name}
                        conn.execute(insert(t).values(**key, **values))
                    else:
                        conn.execute(update(t).where(*where).values(**values))
                rows = conn.execute(select(t.c.kind, t.c.name, t.c.document)).all()
                snapshot = sorted(
                    (json.loads(r.document) for r in rows),
                    key=lambda d: _order(ResourceKey(d["kind"], d["metadata"]["name"])),
                )
                revision = Revision(
                    number=number,
                    created_at=_utc(meta.created_at),
                    source=meta.source,
                    git_commit=meta.git_commit,
                    git_dirty=meta.git_dirty,
                    summary=revision_summary(plan),
                    rollback_of=meta.rollback_of,
                )
                conn.execute(
                    insert(revisions_table).values(
                        number=number,
                        created_at=revision.created_at,
                        source=meta.source,
                        git_commit=meta.git_commit,
                        git_dirty=meta.git_dirty,
                        rollback_of=meta.rollback_of,
                        summary=json.dumps(revision.summary, sort_keys=True),
                        snapshot=json.dumps(snapshot, sort_keys=True, separators=(",", ":")),
                    )
                )
        except IntegrityError as exc:
            raise StateError(
                "another apply wrote to the store at the same time; plan and apply again"
            ) from exc
        return revision

    def revisions(self) -> list[Revision]:
        r = revisions_table
        cols = (
            r.c.number,
            r.c.created_at,
            r.c.source,
            r.c.git_commit,
            r.c.git_dirty,
            r.c.rollback_of,
            r.c.summary,
        )
        with self.engine.connect() as conn:
            rows = conn.execute(select(*cols).order_by(r.c.number)).all()
        return [
            Revision(
                number=row.number,
                created_at=_utc(row.created_at),
                source=row.source,
                git_commit=row.git_commit,
                git_dirty=row.git_dirty,
                summary=json.loads(row.summary),
                rollback_of=row.rollback_of,
            )
            for row in rows
        ]

    def snapshot(self, number: int) -> ResourceSet:
        r = revisions_table
        with self.engine.connect() as conn:
            text = conn.execute(select(r.c.snapshot).where(r.c.number == number)).scalar()
        if text is None:
            raise RevisionNotFound(f"revision {number} does not exist")
        return ResourceSet(tuple(from_document(d) for d in json.loads(text)))


class MemoryStateStore:
    """The in-memory twin of ``SqlStateStore``: same contract, nothing on disk."""

    def __init__(self) -> None:
        self._docs: dict[ResourceKey, tuple[dict[str, Any], int]] = {}
        self._revisions: list[tuple[Revision, list[dict[str, Any]]]] = []

    def live(self) -> ResourceSet:
        return _resource_set({k: copy.deepcopy(d) for k, (d, _) in self._docs.items()})

    def current_revision(self) -> int | None:
        return self._revisions[-1][0].number if self._revisions else None

    def resource_revision(self, key: ResourceKey) -> int | None:
        entry = self._docs.get(key)
        return None if entry is None else entry[1]

    def apply(self, plan: Plan, meta: ApplyMeta) -> Revision:
        number = (self.current_revision() or 0) + 1
        docs = dict(self._docs)  # work on a copy: nothing is visible until the end
        for change in plan.pending:
            found = docs.get(change.key)
            problem = _conflict(change, None if found is None else found[0])
            if problem is not None:
                raise problem
            if change.action is Action.DELETE:
                del docs[change.key]
            else:
                assert change.after is not None
                docs[change.key] = (json.loads(encode(change.after)), number)
        revision = Revision(
            number=number,
            created_at=_utc(meta.created_at),
            source=meta.source,
            git_commit=meta.git_commit,
            git_dirty=meta.git_dirty,
            summary=revision_summary(plan),
            rollback_of=meta.rollback_of,
        )
        snapshot = [copy.deepcopy(docs[k][0]) for k in sorted(docs, key=_order)]
        self._docs = docs
        self._revisions.append((revision, snapshot))
        return revision

    def revisions(self) -> list[Revision]:
        return [r for r, _ in self._revisions]

    def snapshot(self, number: int) -> ResourceSet:
        for revision, docs in self._revisions:
            if revision.number == number:
                return ResourceSet(tuple(from_document(d) for d in docs))
        raise RevisionNotFound(f"revision {number} does not exist")
