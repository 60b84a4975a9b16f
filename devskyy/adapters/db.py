"""The SQL store's engine and shared table metadata (SQLAlchemy).

Each area (declarative state, runs, security, commerce) declares its tables on the
one ``metadata`` below, in its own module (listed in ``TABLE_MODULES``); ``open_engine``
checks the store's schema revision and creates a new store at head
(``adapters/store_schema``; the migrations are in ``devskyy/migrations``). The default
store is SQLite at ``.devskyy/state.db`` under the current directory; ``--state`` or
``DEVSKYY_STATE_URL`` give any SQLAlchemy URL (PostgreSQL for shared servers).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError

from devskyy.errors import StateError

metadata = MetaData()

STATE_ENV = "DEVSKYY_STATE_URL"
DEFAULT_DIR = ".devskyy"


def default_state_url(cwd: Path | None = None) -> str:
    """``sqlite:///<cwd>/.devskyy/state.db``."""
    base = (cwd or Path.cwd()) / DEFAULT_DIR / "state.db"
    return f"sqlite:///{base}"


def resolve_state_url(option: str | None, cwd: Path | None = None) -> str:
    """The state URL in force: the option, else ``DEVSKYY_STATE_URL``, else the default."""
    return option or os.environ.get(STATE_ENV) or default_state_url(cwd)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for ``url``, its schema checked against this devskyy's migrations.

    A new store is created at the head revision; a store that is behind or has no
    schema version is refused with a message naming ``devskyy migrate``
    (``adapters/store_schema``). ``create=False`` skips that check (``devskyy migrate``
    makes its own). For SQLite files the parent folder is created, and WAL mode with a
    busy timeout lets a daemon and CLI commands share one file.
    """
    register_all_tables()
    try:
        engine = create_engine(url, future=True)
    except (ArgumentError, ImportError, ValueError) as exc:
        raise StateError(_bad_url_message(url, exc)) from None
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            _prepare_sqlite_file(Path(database), url)
        event.listen(engine, "connect", _sqlite_pragmas)
    if create:
        from devskyy.adapters.store_schema import prepare  # noqa: PLC0415 - imports db

        try:
            prepare(engine, url)
        except DatabaseError as exc:
            engine.dispose()
            raise StateError(
                f"cannot open the state store {shown_url(url)}: {reason(exc)}"
            ) from None
        except StateError:
            engine.dispose()
            raise
    return engine


def reason(exc: DatabaseError) -> str:
    """The driver's first line of ``exc``, without the SQL SQLAlchemy appends."""
    return str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__


def _prepare_sqlite_file(path: Path, url: str) -> None:
    """Create the store's folder (0700) and file (0600) before SQLite does.

    SQLite creates ``-wal``, ``-shm`` and journal files with the mode of the database
    file, so a 0600 ``state.db`` keeps the hashed keys and the audit log from other
    local users. The file is created exclusively and never through a symbolic link; a
    store that already exists keeps its mode.
    """
    try:
        if not path.parent.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _ignore_in_git(path.parent)
        elif path.parent.name == DEFAULT_DIR:
            _ignore_in_git(path.parent)
        if not path.exists() and not path.is_symlink():
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            # Another process may create it meanwhile: SQLite then opens theirs.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, flags, 0o600))
    except OSError as exc:
        raise StateError(
            f"cannot create the state store {shown_url(url)}: {exc.strerror or exc}"
        ) from None


def _ignore_in_git(folder: Path) -> None:
    """Keep the default state folder out of git (as ``.pytest_cache`` does).

    ``.devskyy/`` holds the store (hashed keys, the audit log) and fixer backups; next
    to a manifests repository a ``git add .`` must not pick it up.
    """
    marker = folder / ".gitignore"
    if folder.name == DEFAULT_DIR and not marker.exists():
        marker.write_text("# Created by devskyy: the local state store and backups.\n*\n")


def shown_url(url: str) -> str:
    """``url`` fit for messages: the password, if any, is replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r":[^:/@]*@", ":***@", url)


def _bad_url_message(url: str, exc: Exception) -> str:
    shown = shown_url(url)
    example = "e.g. sqlite:///.devskyy/state.db or postgresql+psycopg://user@host/db"
    if isinstance(exc, ImportError):
        return f"state URL {shown!r}: its database driver is not installed ({exc})"
    try:
        driver = make_url(url).drivername
    except ArgumentError:
        return f"state URL {shown!r} is not a SQLAlchemy URL ({example})"
    return f"state URL {shown!r}: unknown database driver {driver!r} ({example})"


def register_all_tables() -> None:
    """Import every adapters module that declares tables, so ``create_all`` sees them."""
    for name in TABLE_MODULES:
        importlib.import_module(name)


# Modules that declare tables on ``metadata``; add yours here.
TABLE_MODULES: list[str] = [
    "devskyy.adapters.daemon_lock",
    "devskyy.adapters.run_store",
    "devskyy.adapters.state_store",
    "devskyy.adapters.security_store",
    "devskyy.adapters.commerce_store",
    "devskyy.adapters.history_store",
    "devskyy.adapters.task_runs",
    "devskyy.adapters.ui_sessions",
]
