"""Opening the state store for a command (shared by the declarative and inspect commands).

Read-only commands (``plan``, ``apply --dry-run``, ``get``…) do not create a SQLite
file that does not exist yet: they read an empty store instead, so that looking
never writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devskyy.adapters.db import open_engine
from devskyy.adapters.state_store import MemoryStateStore, SqlStateStore, StateStore


def missing_sqlite_file(url: str) -> bool:
    """True for a SQLite URL whose file does not exist (yet)."""
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return False
    return not Path(url.removeprefix("sqlite:///").split("?", 1)[0]).exists()


@contextmanager
def open_store(url: str, *, write: bool) -> Iterator[StateStore]:
    """The store at ``url``; with ``write=False`` a missing SQLite file reads as empty."""
    if not write and missing_sqlite_file(url):
        yield MemoryStateStore()
        return
    engine = open_engine(url)
    try:
        yield SqlStateStore(engine)
    finally:
        engine.dispose()
