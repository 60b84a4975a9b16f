"""One transaction straight through the pool's DBAPI connection, for the hot paths.

A SQLAlchemy ``Connection`` costs several times a plain DBAPI cursor on SQLite; the
writes done per step of a run, per request (the shared rate limiter) or per sweep go
through ``raw_transaction`` instead: the pool's connection, an explicit ``BEGIN`` where
the driver needs one (SQLite: ``BEGIN`` or ``BEGIN IMMEDIATE`` for a transaction that reads
before it writes; psycopg begins by itself), committed when the body ends, rolled back
when it raises, the connection always returned to the pool. ``engine`` is SQLAlchemy's
or a ``SqliteEngine`` (``adapters.sqlite_engine``), whose connections need no SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine


@contextmanager
def raw_transaction(engine: Engine, begin: str | None = "BEGIN") -> Iterator[Any]:
    """A DBAPI cursor inside one transaction (see the module docstring)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if begin:
            cursor.execute(begin)
        yield cursor
        raw.commit()
    except BaseException:
        raw.rollback()
        raise
    finally:
        raw.close()
