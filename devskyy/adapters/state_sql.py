"""The SQL state store's tables and its SQLAlchemy Core queries (``state_store.SqlStateStore``).

Imported on first use, not with ``state_store``: reading live state and its revision is
plain SQL there, and `devskyy run` needs nothing here (``adapters.sqlite_engine``). The
apply (all or nothing, checked against what is stored) and the revision history are here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    Column,
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
from devskyy.adapters.db import engine_url, metadata
from devskyy.adapters.state_store import (
    _conflict,
    _manifest,
    _revision,
    _snapshot_text,
    _stored_json,
    _utc,
    encode,
)
from devskyy.adapters.store_errors import store_error_message
from devskyy.errors import RevisionNotFound, StateError
from devskyy.model.plan import Action, ApplyMeta, Plan, Revision
from devskyy.model.resources import ResourceKey, ResourceSet

if TYPE_CHECKING:
    from devskyy.adapters.state_store import InApply

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


class CoreState:
    """What ``SqlStateStore`` does through SQLAlchemy Core (see the module docstring)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def resource_revision(self, key: ResourceKey) -> int | None:
        t = resources_table
        query = select(t.c.revision).where(t.c.kind == key.kind, t.c.name == key.name)
        with self._engine.connect() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else int(value)

    def apply(self, plan: Plan, meta: ApplyMeta, *, within: InApply | None = None) -> Revision:
        t = resources_table
        key_match = (t.c.kind == bindparam("k"), t.c.name == bindparam("n"))
        try:
            with self._engine.begin() as conn:
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
            message = store_error_message(exc, engine_url(self._engine))
            raise StateError(message or str(exc.orig)) from exc
        failpoints.hit("apply.committed")
        return revision

    def revisions(self) -> list[Revision]:
        with self._engine.connect() as conn:
            rows = conn.execute(_REVISION_ROWS.order_by(revisions_table.c.number)).all()
        return [_revision_of(row) for row in rows]

    def latest_revision(self) -> Revision | None:
        # One indexed row: the dashboard shows only the latest, whatever the history's length.
        query = _REVISION_ROWS.order_by(revisions_table.c.number.desc()).limit(1)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _revision_of(row)

    def revision(self, number: int) -> Revision | None:
        # One row by primary key: a revision's page need not read the whole history.
        query = _REVISION_ROWS.where(revisions_table.c.number == number)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _revision_of(row)

    def snapshot(self, number: int) -> ResourceSet:
        r = revisions_table
        with self._engine.connect() as conn:
            text = conn.execute(select(r.c.snapshot).where(r.c.number == number)).scalar()
        if text is None:
            raise RevisionNotFound(f"revision {number} does not exist")
        docs = _stored_json(text, "revisions", {"number": number}, "snapshot")
        return ResourceSet(tuple(_manifest(d) for d in docs))
