"""A SQLite store opened without SQLAlchemy: stdlib connections first, SQLAlchemy on first use.

Importing SQLAlchemy takes longer than everything else ``devskyy run`` does before its
first step (about 130 of 350 ms on a 2-core machine: ``benchmarks/bench_scan.py --only
cli``), and a run on the default store needs none of it: opening reads one row (the schema
revision), and reading live state, creating the run and recording its steps are plain
statements on the stdlib driver (``state_store``, ``run_store``). So ``db.open_engine``
opens a store at head whose URL names a plain file (``sqlite:///path``, no query, no
``file:`` URI) as a ``SqliteEngine``:

- ``raw_connection()`` hands out pooled stdlib connections set up as SQLAlchemy's are
  (``sqlite_pragmas``; ``check_same_thread=False``, as its pool for files does), so
  ``dbapi.raw_transaction`` works on either;
- anything else an ``Engine`` has (``begin``, ``connect``, ``dialect``, ``url``…) creates
  SQLAlchemy's ``Engine`` for the same URL once, on first use, and goes to it; raw
  connections then come from its pool.

Every other store (PostgreSQL, a URI or a query in the URL, a store to create, one that
is behind) opens through SQLAlchemy at once. ``is_engine`` tells either kind of engine
from other values without importing SQLAlchemy.
"""

from __future__ import annotations

import re
import sqlite3
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from typing_extensions import TypeIs

if TYPE_CHECKING:
    from sqlalchemy import Engine

# ``sqlite:///<file>`` (also ``sqlite+pysqlite``): no query, fragment or %-escape, so the
# path is the text itself, read the same way by SQLAlchemy (a test holds them together).
_PLAIN = re.compile(r"sqlite(?:\+pysqlite)?:///([^?#%\x00-\x1f]+)")


def _null(value: None) -> None:
    return value


# The stdlib driver binds only exact int, float, str and bytearray values directly; any
# other value, None (SQL NULL) included, goes through its adapter lookup, which for None
# fails through two attribute errors made and dropped: ~0.2 us a parameter, and a step's
# rows bind a handful of NULLs. An adapter for None that returns it answers at once (the
# same NULL; measured in ``benchmarks/bench_workflow.py``). Process-wide, as the driver's
# adapters are, and for every connection alike: None stays None.
sqlite3.register_adapter(type(None), _null)


def plain_sqlite_path(url: str) -> Path | None:
    """The file of a plain SQLite file URL (see the module docstring), else None."""
    found = _PLAIN.fullmatch(url)
    if found is None:
        return None
    database = found.group(1)
    if database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def sqlite_pragmas(dbapi_connection: Any, _record: Any = None) -> None:
    """Set up a new connection: WAL, foreign keys, a busy timeout, NORMAL sync.

    SQLAlchemy calls it on each new connection (a ``connect`` event); ``SqliteEngine``
    on each of its own. WAL with a busy timeout lets a daemon and commands share a file.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class _Pooled:
    """A stdlib connection lent by a ``SqliteEngine``: ``close()`` gives it back."""

    __slots__ = ("_home", "connection")

    def __init__(self, connection: sqlite3.Connection, home: SqliteEngine) -> None:
        self.connection = connection
        self._home = home

    def cursor(self) -> sqlite3.Cursor:
        return self.connection.cursor()

    def commit(self) -> None:
        self.connection.commit()

    def rollback(self) -> None:
        self.connection.rollback()

    def close(self) -> None:
        self._home.check_in(self.connection)


_OWN_FIELDS = frozenset(("url_text", "path", "_idle", "_lock", "_engine"))


class SqliteEngine:
    """The store handle of a plain SQLite file (see the module docstring)."""

    POOL_SIZE = 5  # idle connections kept, as SQLAlchemy's QueuePool keeps

    def __init__(self, url: str, path: Path) -> None:
        self.url_text = url
        self.path = path
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._engine: Engine | None = None

    def raw_connection(self) -> Any:
        """A DBAPI connection; ``close()`` returns it (as ``Engine.raw_connection``)."""
        if self._engine is not None:
            return self._engine.raw_connection()
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            connection = sqlite3.connect(self.path, check_same_thread=False)
            sqlite_pragmas(connection)
        return _Pooled(connection, self)

    def check_in(self, connection: sqlite3.Connection) -> None:
        """Take back a lent connection: rolled back if a transaction is left open, kept
        idle unless the pool is full or SQLAlchemy's engine has taken over."""
        if connection.in_transaction:
            connection.rollback()
        with self._lock:
            if self._engine is None and len(self._idle) < self.POOL_SIZE:
                self._idle.append(connection)
                return
        connection.close()

    def sqlalchemy(self) -> Engine:
        """SQLAlchemy's engine for this store, created on first use."""
        if self._engine is None:
            from devskyy.adapters.db import sqlalchemy_engine  # noqa: PLC0415 - on first use only

            created: Engine | None = sqlalchemy_engine(self.url_text)
            with self._lock:
                if self._engine is None:
                    self._engine, created = created, None
                idle, self._idle = self._idle, []
            if created is not None:  # another thread made one first
                created.dispose()
            for connection in idle:
                connection.close()
        assert self._engine is not None
        return self._engine

    def dispose(self) -> None:
        """Close the idle connections (and SQLAlchemy's pool, if it was created)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        if self._engine is not None:
            self._engine.dispose()

    def __getattr__(self, name: str) -> Any:
        # Only what this instance lacks gets here: the rest of SQLAlchemy's Engine. Its own
        # fields are missing only before __init__ (a copy being made): never forwarded.
        if name.startswith("__") or name in _OWN_FIELDS:
            raise AttributeError(name)
        return getattr(self.sqlalchemy(), name)

    def __repr__(self) -> str:
        return f"SqliteEngine({str(self.path)!r})"


def schema_revision(engine: SqliteEngine) -> str | None:
    """The store's one schema revision row, or None (no such table, none, several, or an
    error: the SQLAlchemy path then judges the store and says what is wrong)."""
    try:
        connection = engine.raw_connection()
    except sqlite3.Error:
        return None
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT version_num FROM alembic_version")
        rows = cursor.fetchall()
        cursor.close()
    except sqlite3.Error:
        return None
    finally:
        connection.close()
    return str(rows[0][0]) if len(rows) == 1 else None


def is_engine(value: object) -> TypeIs[Engine]:
    """Whether ``value`` is a store engine: a ``SqliteEngine`` (which stands for one) or
    SQLAlchemy's ``Engine``.

    Without importing SQLAlchemy: when it is not imported, no ``Engine`` can exist.
    """
    if isinstance(value, SqliteEngine):
        return True
    module = sys.modules.get("sqlalchemy.engine.base")
    return module is not None and isinstance(value, module.Engine)


def backend(engine: Engine) -> str:
    """The database ``engine`` opens (``sqlite``, ``postgresql``…), asked without making a
    ``SqliteEngine``'s SQLAlchemy engine."""
    return "sqlite" if isinstance(engine, SqliteEngine) else str(engine.dialect.name)
