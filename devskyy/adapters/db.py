"""The SQL store's engine and shared table metadata (SQLAlchemy).

Each area (declarative state, runs, security, commerce) declares its tables on the
one ``metadata`` below, in its own module (listed in ``TABLE_MODULES``); ``open_engine``
checks the store's schema revision and creates a new store at head
(``adapters/store_schema``; the migrations are in ``devskyy/migrations``). The default
store is SQLite at ``.devskyy/state.db`` under the current directory; ``--state`` or
``DEVSKYY_STATE_URL`` give any SQLAlchemy URL (PostgreSQL for shared servers): reading
the URL is ``adapters/store_url``, a store error in words ``adapters/store_errors``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

from devskyy.adapters import safe_files
from devskyy.adapters.sqlite_engine import (
    SqliteEngine,
    plain_sqlite_path,
    schema_revision,
    sqlite_pragmas,
)
from devskyy.adapters.store_errors import reason, store_error_message
from devskyy.adapters.store_url import DEFAULT_DIR, _file_of, _sqlite_url, shown_url
from devskyy.errors import StateError
from devskyy.extras import missing_extra_message
from devskyy.model.jsonlimits import bounded_loads

if TYPE_CHECKING:
    from sqlalchemy import Engine, MetaData

    metadata: MetaData

# SQLAlchemy is imported where it is used, not here: `devskyy run` on a plain SQLite file
# never needs it (``adapters.sqlite_engine``), and this module is on its way.
_metadata: list[MetaData] = []


def __getattr__(name: str) -> Any:
    """``metadata``, the one ``MetaData`` every table module declares its tables on,
    made when a table module first asks for it (PEP 562)."""
    if name == "metadata":
        if not _metadata:
            from sqlalchemy import MetaData  # noqa: PLC0415 - see above

            _metadata.append(MetaData())
        return _metadata[0]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for ``url``, its schema checked against this devskyy's migrations.

    A new store is created at the head revision; a store that is behind or has no
    schema version is refused with a message naming ``devskyy migrate``
    (``adapters/store_schema``). ``create=False`` skips that check (``devskyy migrate``
    makes its own). For SQLite files the parent folder is created, and WAL mode with a
    busy timeout lets a daemon and CLI commands share one file.

    A store at head at a plain file URL is a ``SqliteEngine``: SQLAlchemy's engine is
    made only when something needs more than a stdlib connection (``adapters.sqlite_engine``).
    """
    # No register_all_tables() here: a store at head needs none of the table modules, and
    # creating or judging one registers them itself (store_schema), so a command imports
    # only the areas it uses (`devskyy run` no commerce, security or UI tables).
    plain = plain_sqlite_path(url)
    if plain is not None:
        _prepare_sqlite_file(plain, url)
        if create:
            from devskyy.adapters.store_schema import head  # noqa: PLC0415 - imports db

            handle = SqliteEngine(url, plain)
            if schema_revision(handle) == head():
                return cast("Engine", handle)
            handle.dispose()  # to create, or to refuse with a reason: SQLAlchemy's way
    engine = sqlalchemy_engine(url)
    if engine.dialect.name == "sqlite" and plain is None:
        found = _sqlite_url(url)
        # A SQLite URI (uri=true) may open read-only or shared: its file is the user's.
        path = None if found is None or found[1] else _file_of(*found)
        if path is not None:
            _prepare_sqlite_file(path, url)
    if create:
        from sqlalchemy.exc import DBAPIError  # noqa: PLC0415 - see the imports

        from devskyy.adapters.store_schema import prepare  # noqa: PLC0415 - imports db

        try:
            prepare(engine, url)
        except DBAPIError as exc:
            engine.dispose()
            raise StateError(store_error_message(exc, url, opening=True) or reason(exc)) from None
        except TypeError as exc:
            # The driver refused a query option of the URL at connect time.
            engine.dispose()
            raise StateError(_bad_url_message(url, exc)) from None
        except StateError:
            engine.dispose()
            raise
    return engine


def sqlalchemy_engine(url: str) -> Engine:
    """SQLAlchemy's engine for ``url``; a SQLite one sets up each connection
    (``sqlite_pragmas``). No schema check: ``open_engine`` makes it."""
    from sqlalchemy import event  # noqa: PLC0415 - see the imports

    engine = _create(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", sqlite_pragmas)
    return engine


def _create(url: str) -> Engine:
    """``create_engine``, with a malformed URL or an option the driver ignores refused."""
    from sqlalchemy import create_engine  # noqa: PLC0415 - see the imports
    from sqlalchemy.exc import ArgumentError, SAWarning  # noqa: PLC0415

    try:
        with warnings.catch_warnings():
            # SQLAlchemy only warns about query options a driver ignores; a store URL
            # with an option that does nothing is a mistake to report, not to ignore.
            warnings.simplefilter("error", SAWarning)
            # Every JSON column is read through the depth/size check first.
            return create_engine(url, future=True, json_deserializer=bounded_loads)
    except (ArgumentError, ImportError, ValueError, TypeError, SAWarning) as exc:
        raise StateError(_bad_url_message(url, exc)) from None


def engine_url(engine: Engine) -> str:
    """The store URL of ``engine`` for messages: password hidden, ``file:`` not re-quoted."""
    if isinstance(engine, SqliteEngine):
        return engine.url_text  # a plain file URL: nothing to hide or re-quote
    return unquote(engine.url.render_as_string(hide_password=True))


def check_url(url: str) -> None:
    """Refuse a malformed store URL without connecting (commands that read nothing yet)."""
    _create(url).dispose()


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
        if path.is_symlink() and not path.exists():
            # SQLite would create the link's target, wherever it points.
            raise StateError(
                f"the state store {shown_url(url)} is a symbolic link to a missing file; "
                "remove the link or create its target"
            )
        if not path.exists():
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            # Another process may create it meanwhile: SQLite then opens theirs.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, flags, 0o600))
    except OSError as exc:
        raise StateError(
            f"cannot create the state store {shown_url(url)}: {exc.strerror or exc}"
        ) from None


def make_private(database: Path) -> list[Path]:
    """Take group and other access off a SQLite store's files (0.1.0 made them 0644).

    ``state.db`` and its ``-wal``, ``-shm`` and ``-journal`` files, each opened without
    following a symbolic link and changed through its descriptor (a link is left alone);
    returns the files whose mode changed.
    """
    changed: list[Path] = []
    for path in (database, *(database.with_name(database.name + s) for s in _SIDE_FILES)):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue  # absent, or a symbolic link
        try:
            mode = os.fstat(fd).st_mode
            if mode & 0o077:
                os.fchmod(fd, mode & 0o700)
                changed.append(path)
        finally:
            os.close(fd)
    return changed


_SIDE_FILES = ("-wal", "-shm", "-journal")


def _ignore_in_git(folder: Path) -> None:
    """Keep the default state folder out of git (as ``.pytest_cache`` does).

    ``.devskyy/`` holds the store (hashed keys, the audit log) and fixer backups; next
    to a manifests repository a ``git add .`` must not pick it up.
    """
    marker = folder / ".gitignore"
    if folder.name == DEFAULT_DIR and not os.path.lexists(marker):
        # lexists and safe_files: a checkout may hold a dangling .devskyy/.gitignore link
        # aimed at a file to create elsewhere; a marker is not worth following it.
        with contextlib.suppress(safe_files.UnsafeWrite):
            text = "# Created by devskyy: the local state store and backups.\n*\n"
            safe_files.write_text(folder, ".gitignore", text)


def _bad_url_message(url: str, exc: Exception) -> str:
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - see the imports
    from sqlalchemy.exc import ArgumentError, SAWarning  # noqa: PLC0415

    shown = shown_url(url)
    example = "e.g. sqlite:///.devskyy/state.db or postgresql+psycopg://user@host/db"
    if isinstance(exc, ImportError):
        # The driver of a store devskyy ships an extra for names that extra (psycopg).
        hint = missing_extra_message(exc) or str(exc)
        return f"state URL {shown!r}: its database driver is not installed ({hint})"
    if isinstance(exc, ValueError | TypeError | SAWarning):
        detail = str(exc).split(" (Background on", 1)[0].strip()
        return f"state URL {shown!r} has an option the driver does not accept ({detail}); remove it"
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
    "devskyy.adapters.run_sql",
    "devskyy.adapters.state_sql",
    "devskyy.adapters.security_store",
    "devskyy.adapters.commerce_store",
    "devskyy.adapters.history_sql",
    "devskyy.adapters.task_runs",
    "devskyy.adapters.ui_sessions",
    "devskyy.adapters.schedule_store",
    "devskyy.adapters.rate_store",
    "devskyy.adapters.sent_mail",
]
