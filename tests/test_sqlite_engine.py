"""A SQLite store at head opens without SQLAlchemy (``adapters.sqlite_engine``).

``open_engine`` gives a ``SqliteEngine`` for a plain file URL whose schema is at head: its
raw connections are the stdlib driver's, set up as SQLAlchemy's are, pooled, and handed
back clean; the first use of anything else makes SQLAlchemy's engine once, which then
lends the raw connections too. Every other store opens through SQLAlchemy at once.
(That a whole ``devskyy run`` never imports SQLAlchemy: ``tests/test_run_imports.py``.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from devskyy.adapters.db import open_engine
from devskyy.adapters.dbapi import raw_transaction
from devskyy.adapters.engine import is_engine
from devskyy.adapters.sqlite_engine import SqliteEngine, backend
from devskyy.adapters.state_store import SqlStateStore
from devskyy.errors import StateError

PRAGMAS = ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")


def _pragmas(connection: object) -> dict[str, object]:
    cursor = connection.cursor()  # type: ignore[attr-defined]
    found = {name: cursor.execute(f"PRAGMA {name}").fetchone()[0] for name in PRAGMAS}
    cursor.close()
    return found


@pytest.fixture
def at_head(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    open_engine(url).dispose()  # created (through SQLAlchemy) and stamped at head
    return url


@pytest.fixture
def engine(at_head: str) -> Iterator[SqliteEngine]:
    """The store at head opened again: a ``SqliteEngine``, disposed after the test."""
    engine = open_engine(at_head)
    assert isinstance(engine, SqliteEngine)
    yield engine
    engine.dispose()


def test_a_new_store_is_created_through_sqlalchemy_then_opens_without_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'state.db'}"
    first = open_engine(url)
    try:
        assert isinstance(first, Engine)  # nothing at head yet: SQLAlchemy creates it
    finally:
        first.dispose()
    again = open_engine(url)
    try:
        assert isinstance(again, SqliteEngine)
        assert (tmp_path / "new" / "state.db").stat().st_mode & 0o777 == 0o600
    finally:
        again.dispose()


def test_urls_with_options_and_stores_not_at_head_open_through_sqlalchemy(
    at_head: str, tmp_path: Path
) -> None:
    with_query = open_engine(at_head + "?timeout=5")
    assert isinstance(with_query, Engine)
    with_query.dispose()
    # A store behind head is refused with the same message as before, not opened lazily.
    with sqlite3.connect(tmp_path / "state.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    with pytest.raises(StateError, match="run `devskyy migrate`"):
        open_engine(at_head)


def test_raw_connections_are_set_up_as_sqlalchemys_and_reused(engine: SqliteEngine) -> None:
    raw = engine.raw_connection()
    mine = _pragmas(raw)
    underlying = raw.connection
    raw.close()
    again = engine.raw_connection()
    assert again.connection is underlying  # back in the pool, lent again
    again.close()
    assert mine == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 30000,
        "synchronous": 1,
    }
    theirs = engine.sqlalchemy().raw_connection()
    try:
        assert _pragmas(theirs) == mine
    finally:
        theirs.close()


def test_a_connection_handed_back_mid_transaction_is_rolled_back(engine: SqliteEngine) -> None:
    raw = engine.raw_connection()
    cursor = raw.cursor()
    cursor.execute("BEGIN IMMEDIATE")
    cursor.execute(
        "INSERT INTO revisions (number, created_at, source, summary, snapshot) "
        "VALUES (1, '2026-01-01 00:00:00', 'x', '{}', '[]')"
    )
    raw.close()  # not committed: the write lock must not outlive the loan
    with raw_transaction(engine, "BEGIN IMMEDIATE") as other:
        other.execute("SELECT count(*) FROM revisions")
        assert other.fetchone()[0] == 0
    assert SqlStateStore(engine).current_revision() is None


def test_sqlalchemy_is_made_once_on_first_use_and_then_lends_the_connections(
    engine: SqliteEngine,
) -> None:
    engine.raw_connection().close()  # one idle stdlib connection
    with engine.begin() as conn:  # Engine.begin: SQLAlchemy's engine is made here
        assert conn.execute(text("SELECT count(*) FROM runs")).scalar_one() == 0
    made = engine.sqlalchemy()
    assert isinstance(made, Engine)
    assert engine.sqlalchemy() is made
    assert engine.dialect is made.dialect
    raw = engine.raw_connection()
    try:
        assert not hasattr(raw, "_home")  # SQLAlchemy's pooled connection, not ours
    finally:
        raw.close()


def test_is_engine_and_backend_without_making_sqlalchemys_engine(
    engine: SqliteEngine, at_head: str
) -> None:
    assert is_engine(engine)
    assert backend(engine) == "sqlite"
    assert engine._engine is None  # neither question made it
    assert is_engine(engine.sqlalchemy())
    assert not is_engine(at_head)
    assert not is_engine(object())


def test_none_is_bound_as_null_through_the_registered_adapter() -> None:
    """None takes the identity adapter (no failed lookups per NULL) and stays NULL, on
    every connection of the process: the stdlib driver's and SQLAlchemy's alike."""
    assert sqlite3.adapters[(type(None), sqlite3.PrepareProtocol)](None) is None
    connection = sqlite3.connect(":memory:")
    try:
        row = connection.execute("SELECT ? IS NULL, typeof(?)", (None, None)).fetchone()
    finally:
        connection.close()
    assert row == (1, "null")
