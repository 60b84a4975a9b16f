"""The SQL store's engine and shared table metadata (SQLAlchemy).

Each area (declarative state, runs, security, commerce) declares its tables on the
one ``metadata`` below, in its own module; ``open_engine`` creates them. The default
store is SQLite at ``.devskyy/state.db`` under the current directory; ``--state`` or
``DEVSKYY_STATE_URL`` give any SQLAlchemy URL (PostgreSQL for shared servers).
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event, inspect
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
    """An engine for ``url`` with every registered table created.

    For SQLite files the parent folder is created, and WAL mode with a busy timeout
    lets a daemon and CLI commands share one file.
    """
    _register_all_tables()
    try:
        engine = create_engine(url, future=True)
    except (ArgumentError, ImportError) as exc:
        raise StateError(_bad_url_message(url, exc)) from None
    if engine.dialect.name == "sqlite" and url != "sqlite:///:memory:":
        database = engine.url.database
        if database and database != ":memory:":
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
                _ignore_in_git(Path(database).parent)
            except OSError as exc:
                raise StateError(
                    f"cannot create the folder of the state store {shown_url(url)}: "
                    f"{exc.strerror or exc}"
                ) from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    if create:
        try:
            _create_tables(engine)
            check_columns(engine)
        except DatabaseError as exc:
            engine.dispose()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StateError(f"cannot open the state store {shown_url(url)}: {reason}") from None
        except StateError:
            engine.dispose()
            raise
    return engine


def _ignore_in_git(folder: Path) -> None:
    """Keep the default state folder out of git (as ``.pytest_cache`` does).

    ``.devskyy/`` holds the store (hashed keys, the audit log) and fixer backups; next
    to a manifests repository a ``git add .`` must not pick it up.
    """
    marker = folder / ".gitignore"
    if folder.name == DEFAULT_DIR and not marker.exists():
        marker.write_text("# Created by devskyy: the local state store and backups.\n*\n")


def _create_tables(engine: Engine) -> None:
    """``create_all``, tolerating another process creating the same tables meanwhile.

    Two first commands on a new store (two ``apply`` in CI, a daemon and a CLI) both see
    no tables; the second one's ``CREATE TABLE`` then fails with "already exists". The
    tables are there by then, so checking again (``create_all`` skips existing tables)
    goes further. Each such failure means another process created one more table, so
    there are at most as many as there are tables.
    """
    attempts = len(metadata.tables) + 1
    for attempt in range(attempts):
        try:
            metadata.create_all(engine)
            return
        except DatabaseError as exc:
            text = str(exc.orig).lower()
            raced = "already exists" in text or "duplicate key" in text
            if attempt == attempts - 1 or not raced:
                raise


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


def check_columns(engine: Engine) -> None:
    """Refuse a store whose existing tables lack columns this devskyy needs.

    ``create_all`` adds missing tables but never alters existing ones, so a store made
    by another version would otherwise fail later, mid-run, with a driver error.
    """
    existing = inspect(engine)
    for table in metadata.sorted_tables:
        if not existing.has_table(table.name):
            continue
        have = {c["name"] for c in existing.get_columns(table.name)}
        missing = [c.name for c in table.columns if c.name not in have]
        if missing:
            where = engine.url.render_as_string(hide_password=True)
            raise StateError(
                f"the state store {where} was made by another version of devskyy: "
                f"table {table.name!r} has no column {missing[0]!r}; move it aside "
                "(or use --state with a new URL) and apply again"
            )


def _register_all_tables() -> None:
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
