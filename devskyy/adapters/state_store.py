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

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    delete,
    false,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError

from devskyy.adapters import failpoints
from devskyy.adapters.db import (
    corrupt_json,
    engine_url,
    metadata,
    store_error_message,
)
from devskyy.errors import RevisionNotFound, StateError
from devskyy.model.jsonlimits import bounded_loads
from devskyy.model.manifests import Manifest
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


Transaction = Connection
InApply = Callable[[Transaction, Revision], None]
"""Writes that commit with a revision: called inside ``apply``'s transaction."""


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

    def apply(self, plan: Plan, meta: ApplyMeta, *, within: InApply | None = None) -> Revision:
        """Write every pending change of ``plan`` as the next revision, all or nothing.

        ``within(transaction, revision)`` writes what must commit with the revision (its
        audit event) in the same transaction; only SQL stores take it.
        """
        ...

    def revisions(self) -> list[Revision]:
        """Every revision, oldest first."""
        ...

    def latest_revision(self) -> Revision | None:
        """The latest revision (as ``revisions()[-1]``), None before the first apply."""
        ...

    def revision(self, number: int) -> Revision | None:
        """Revision ``number`` (as ``revisions()`` lists it), None if there is none."""
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


def _manifest(doc: dict[str, Any]) -> Manifest:
    """A stored document as a manifest; a row the models no longer accept is a StateError."""
    try:
        return from_document(doc)
    except (ValidationError, KeyError, TypeError) as exc:
        kind = doc.get("kind", "?") if isinstance(doc, dict) else "?"
        name = doc.get("metadata", {}).get("name", "?") if isinstance(doc, dict) else "?"
        detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else repr(exc)
        raise StateError(
            f"stored {kind}/{name} is not a valid manifest ({detail}); "
            "re-apply the manifests or roll back"
        ) from None


def _stored_json(text: str, table: str, key: dict[str, object], column: str) -> Any:
    """A stored JSON column; a row that does not parse is a ``StateError`` naming it."""
    try:
        return bounded_loads(text)
    except (ValueError, TypeError):
        label = "" if column == "document" else column  # a resource row is its document
        problem = corrupt_json(text, table, key, label, "restore from a backup or rollback")
        if problem is None:
            raise
        raise problem from None


def _resource_set(docs: dict[ResourceKey, dict[str, Any]]) -> ResourceSet:
    return ResourceSet(tuple(_manifest(docs[k]) for k in sorted(docs, key=_order)))


def _conflict(change: Change, found: str | None) -> StateError | None:
    """Why ``change`` cannot be written over ``found`` (the stored text), if it cannot."""
    if change.action is Action.CREATE and found is not None:
        return StateError(f"live state changed since the plan: {change.key} already exists")
    if change.action in (Action.UPDATE, Action.DELETE):
        if found is None:
            return StateError(f"live state changed since the plan: {change.key} no longer exists")
        if change.before is not None and found != encode(change.before):
            return StateError(f"live state changed since the plan: {change.key} was modified")
    return None


def _snapshot_text(stored: dict[ResourceKey, str]) -> str:
    """The JSON list of every stored document, in apply order (documents are already text)."""
    return "[" + ",".join(stored[k] for k in sorted(stored, key=_order)) + "]"


def _revision(number: int, plan: Plan, meta: ApplyMeta) -> Revision:
    return Revision(
        number=number,
        created_at=_utc(meta.created_at),
        source=meta.source,
        git_commit=meta.git_commit,
        git_dirty=meta.git_dirty,
        summary=revision_summary(plan),
        rollback_of=meta.rollback_of,
    )


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_REVISION_ROWS = select(
    revisions_table.c.number,
    revisions_table.c.created_at,
    revisions_table.c.source,
    revisions_table.c.git_commit,
    revisions_table.c.git_dirty,
    revisions_table.c.rollback_of,
    revisions_table.c.summary,
)
"""A revision's columns without its snapshot (the one large column)."""


def _revision_of(row: Any) -> Revision:
    return Revision(
        number=row.number,
        created_at=_utc(row.created_at),
        source=row.source,
        git_commit=row.git_commit,
        git_dirty=row.git_dirty,
        summary=_stored_json(row.summary, "revisions", {"number": row.number}, "summary"),
        rollback_of=row.rollback_of,
    )


class SqlStateStore:
    """Live state in the SQL store (the ``resources`` and ``revisions`` tables)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _docs(self) -> dict[ResourceKey, dict[str, Any]]:
        t = resources_table
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.kind, t.c.name, t.c.document)).all()
        return {
            ResourceKey(r.kind, r.name): _stored_json(
                r.document, "resources", {"kind": r.kind, "name": r.name}, "document"
            )
            for r in rows
        }

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

    def apply(self, plan: Plan, meta: ApplyMeta, *, within: InApply | None = None) -> Revision:
        t = resources_table
        key_match = (t.c.kind == bindparam("k"), t.c.name == bindparam("n"))
        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "sqlite":
                    # Take the write lock before reading, so that two appliers queue on
                    # the busy timeout instead of failing to upgrade a read transaction.
                    conn.execute(update(revisions_table).where(false()).values(source=""))
                latest = conn.execute(select(func.max(revisions_table.c.number))).scalar()
                number = int(latest or 0) + 1
                rows = conn.execute(select(t.c.kind, t.c.name, t.c.document)).all()
                stored = {ResourceKey(r.kind, r.name): r.document for r in rows}
                deletes: list[dict[str, Any]] = []
                updates: list[dict[str, Any]] = []
                inserts: list[dict[str, Any]] = []
                for change in plan.pending:
                    key = change.key
                    problem = _conflict(change, stored.get(key))
                    if problem is not None:
                        raise problem
                    if change.action is Action.DELETE:
                        del stored[key]
                        deletes.append({"k": key.kind, "n": key.name})
                        continue
                    assert change.after is not None
                    stored[key] = text = encode(change.after)
                    if change.action is Action.CREATE:
                        row = {"kind": key.kind, "name": key.name, "document": text}
                        inserts.append({**row, "revision": number})
                    else:
                        updates.append({"k": key.kind, "n": key.name, "d": text})
                if deletes:
                    conn.execute(delete(t).where(*key_match), deletes)
                if updates:
                    values = {"document": bindparam("d"), "revision": number}
                    conn.execute(update(t).where(*key_match).values(**values), updates)
                if inserts:
                    conn.execute(insert(t), inserts)
                revision = _revision(number, plan, meta)
                conn.execute(
                    insert(revisions_table).values(
                        number=number,
                        created_at=revision.created_at,
                        source=meta.source,
                        git_commit=meta.git_commit,
                        git_dirty=meta.git_dirty,
                        rollback_of=meta.rollback_of,
                        summary=json.dumps(revision.summary, sort_keys=True),
                        snapshot=_snapshot_text(stored),
                    )
                )
                if within is not None:
                    within(conn, revision)
                failpoints.hit("apply.writing")
        except IntegrityError as exc:
            raise StateError(
                "the store refused the apply (another apply at the same time?): "
                f"{type(exc.orig).__name__}: {exc.orig}"
            ) from exc
        except OperationalError as exc:
            # Read-only, locked past the busy timeout, damaged: say which, without SQL.
            message = store_error_message(exc, engine_url(self.engine))
            raise StateError(message or str(exc.orig)) from exc
        failpoints.hit("apply.committed")
        return revision

    def revisions(self) -> list[Revision]:
        with self.engine.connect() as conn:
            rows = conn.execute(_REVISION_ROWS.order_by(revisions_table.c.number)).all()
        return [_revision_of(row) for row in rows]

    def latest_revision(self) -> Revision | None:
        # One indexed row: the dashboard shows only the latest, whatever the history's length.
        query = _REVISION_ROWS.order_by(revisions_table.c.number.desc()).limit(1)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _revision_of(row)

    def revision(self, number: int) -> Revision | None:
        # One row by primary key: a revision's page need not read the whole history.
        query = _REVISION_ROWS.where(revisions_table.c.number == number)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _revision_of(row)

    def snapshot(self, number: int) -> ResourceSet:
        r = revisions_table
        with self.engine.connect() as conn:
            text = conn.execute(select(r.c.snapshot).where(r.c.number == number)).scalar()
        if text is None:
            raise RevisionNotFound(f"revision {number} does not exist")
        docs = _stored_json(text, "revisions", {"number": number}, "snapshot")
        return ResourceSet(tuple(_manifest(d) for d in docs))


class MemoryStateStore:
    """The in-memory twin of ``SqlStateStore``: same contract, nothing on disk.

    It keeps the same canonical text as the SQL rows, so stale-plan checks and
    snapshots behave identically.
    """

    def __init__(self) -> None:
        self._rows: dict[ResourceKey, tuple[str, int]] = {}
        self._revisions: list[tuple[Revision, str]] = []

    def live(self) -> ResourceSet:
        return _resource_set({k: json.loads(text) for k, (text, _) in self._rows.items()})

    def current_revision(self) -> int | None:
        return self._revisions[-1][0].number if self._revisions else None

    def resource_revision(self, key: ResourceKey) -> int | None:
        entry = self._rows.get(key)
        return None if entry is None else entry[1]

    def apply(self, plan: Plan, meta: ApplyMeta, *, within: InApply | None = None) -> Revision:
        if within is not None:
            raise StateError("the in-memory store has no transaction to write along an apply")
        number = (self.current_revision() or 0) + 1
        rows = dict(self._rows)  # work on a copy: nothing is visible until the end
        for change in plan.pending:
            found = rows.get(change.key)
            problem = _conflict(change, None if found is None else found[0])
            if problem is not None:
                raise problem
            if change.action is Action.DELETE:
                del rows[change.key]
            else:
                assert change.after is not None
                rows[change.key] = (encode(change.after), number)
        revision = _revision(number, plan, meta)
        snapshot = _snapshot_text({k: text for k, (text, _) in rows.items()})
        self._rows = rows
        self._revisions.append((revision, snapshot))
        return revision

    def revisions(self) -> list[Revision]:
        return [r for r, _ in self._revisions]

    def latest_revision(self) -> Revision | None:
        return self._revisions[-1][0] if self._revisions else None

    def revision(self, number: int) -> Revision | None:
        # Numbered 1, 2, … without gaps, so the number is the index (bounds checked).
        if 1 <= number <= len(self._revisions):
            return self._revisions[number - 1][0]
        return None

    def snapshot(self, number: int) -> ResourceSet:
        for revision, text in self._revisions:
            if revision.number == number:
                return ResourceSet(tuple(_manifest(d) for d in json.loads(text)))
        raise RevisionNotFound(f"revision {number} does not exist")
