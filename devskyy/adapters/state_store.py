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

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from devskyy.adapters.dbapi import raw_transaction
from devskyy.adapters.store_errors import corrupt_json
from devskyy.errors import RevisionNotFound, StateError
from devskyy.model.jsonlimits import bounded_loads
from devskyy.model.manifests import Manifest
from devskyy.model.plan import Action, ApplyMeta, Change, Plan, Revision, revision_summary
from devskyy.model.resources import KIND_ORDER, ResourceKey, ResourceSet, from_document

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from devskyy.adapters.engine import Engine
    from devskyy.adapters.state_sql import CoreState

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


class SqlStateStore:
    """Live state in the SQL store (the ``resources`` and ``revisions`` tables).

    Reading live state and its revision number are plain statements through the driver
    (``dbapi.raw_transaction``: the same text on SQLite and PostgreSQL), so every command,
    `devskyy run` included, reads them without SQLAlchemy (``adapters.sqlite_engine``);
    applying and reading history go through SQLAlchemy Core (``state_sql``), imported on
    first use.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @functools.cached_property
    def _sql(self) -> CoreState:
        from devskyy.adapters.state_sql import CoreState  # noqa: PLC0415 - see the docstring

        return CoreState(self.engine)

    def _docs(self) -> dict[ResourceKey, dict[str, Any]]:
        with raw_transaction(self.engine, begin=None) as cursor:
            cursor.execute("SELECT kind, name, document FROM resources")
            rows = cursor.fetchall()
        return {
            ResourceKey(kind, name): _stored_json(
                document, "resources", {"kind": kind, "name": name}, "document"
            )
            for kind, name, document in rows
        }

    def live(self) -> ResourceSet:
        return _resource_set(self._docs())

    def current_revision(self) -> int | None:
        with raw_transaction(self.engine, begin=None) as cursor:
            cursor.execute("SELECT max(number) FROM revisions")
            value = cursor.fetchone()[0]
        return None if value is None else int(value)

    def resource_revision(self, key: ResourceKey) -> int | None:
        return self._sql.resource_revision(key)

    def apply(self, plan: Plan, meta: ApplyMeta, *, within: InApply | None = None) -> Revision:
        return self._sql.apply(plan, meta, within=within)

    def revisions(self) -> list[Revision]:
        return self._sql.revisions()

    def latest_revision(self) -> Revision | None:
        return self._sql.latest_revision()

    def revision(self, number: int) -> Revision | None:
        return self._sql.revision(number)

    def snapshot(self, number: int) -> ResourceSet:
        return self._sql.snapshot(number)


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
