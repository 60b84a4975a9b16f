"""Opening the state store for a command (shared by the declarative and inspect commands).

Read-only commands (``plan``, ``apply --dry-run``, ``get``…) do not create a SQLite
file that does not exist yet: they read an empty store instead, so that looking
never writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from devskyy.adapters.db import check_url, open_engine
from devskyy.adapters.state_store import MemoryStateStore, SqlStateStore, StateStore
from devskyy.adapters.store_url import sqlite_file

if TYPE_CHECKING:
    from devskyy.adapters.engine import Engine


def missing_sqlite_file(url: str) -> bool:
    """True for a SQLite URL whose file does not exist (yet).

    The file is the one the driver opens (``adapters.store_url.sqlite_file``): a ``file:`` URI
    (``sqlite:///file:/srv/state.db?mode=ro&uri=true``, a read-only opening) names it
    after the scheme, and a query (``?timeout=5``) is not part of it.
    """
    path = sqlite_file(url)
    return path is not None and not path.exists()


@contextmanager
def _opened(url: str) -> Iterator[Engine]:
    """The store at ``url``, disposed on the way out."""
    engine = open_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def read_engine(url: str) -> Iterator[Engine | None]:
    """The store at ``url`` opened to read, or None for a SQLite file that does not exist
    (nothing is created: the caller reads that as empty); disposed on the way out."""
    if missing_sqlite_file(url):
        check_url(url)  # a bad option is an error even before the file exists
        yield None
        return
    with _opened(url) as engine:
        yield engine


@contextmanager
def open_store(url: str, *, write: bool) -> Iterator[StateStore]:
    """The store at ``url``; with ``write=False`` a missing SQLite file reads as empty."""
    with _opened(url) if write else read_engine(url) as engine:
        yield MemoryStateStore() if engine is None else SqlStateStore(engine)
