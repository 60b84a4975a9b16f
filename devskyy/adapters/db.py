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
from devskyy.errors import StateError, StoredValueTooDeep
from devskyy.extras import missing_extra_message
from devskyy.model.jsonlimits import JsonLimitError, bounded_loads

if TYPE_CHECKING:
    from sqlalchemy import Engine, MetaData
    from sqlalchemy.engine import URL
    from sqlalchemy.exc import DBAPIError

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


STATE_ENV = "DEVSKYY_STATE_URL"
DEFAULT_DIR = ".devskyy"


def default_state_url(cwd: Path | None = None) -> str:
    """``sqlite:///<cwd>/.devskyy/state.db``."""
    base = (cwd or Path.cwd()) / DEFAULT_DIR / "state.db"
    return f"sqlite:///{base}"


def resolve_state_url(option: str | None, cwd: Path | None = None) -> str:
    """The state URL in force: the option, else ``DEVSKYY_STATE_URL``, else the default."""
    return option or os.environ.get(STATE_ENV) or default_state_url(cwd)


# pysqlite's own connect() arguments: SQLAlchemy takes them out of a SQLite URL's query;
# with ``uri=true`` the rest of the query goes to SQLite as the URI's query
# (``create_connect_args`` in sqlalchemy/dialects/sqlite/pysqlite.py).
_PYSQLITE_ARGS = frozenset(
    ("uri", "timeout", "isolation_level", "detect_types", "check_same_thread", "cached_statements")
)


def _sqlite_url(url: str) -> tuple[URL, bool] | None:
    """The parsed SQLite URL and whether its database is a SQLite URI (``uri=true``).

    None for another database, a URL SQLAlchemy cannot parse, or one it refuses to open
    as SQLite (a host or user, a ``uri`` that is not a boolean): opening reports those.
    """
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - see the imports
    from sqlalchemy.exc import ArgumentError  # noqa: PLC0415
    from sqlalchemy.util import asbool  # noqa: PLC0415

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.host or parsed.port or parsed.username:
        return None
    try:
        return parsed, asbool(parsed.query.get("uri", False))
    except ValueError:
        return None


def sqlite_file(url: str) -> Path | None:
    """The database file a SQLite URL opens, read as SQLAlchemy and SQLite read it (pure).

    None for an in-memory or temporary database, another database, or text that is not a
    SQLAlchemy URL. The query is never part of the path (``sqlite:///x.db?timeout=5`` is
    ``x.db``), and %-escapes are decoded. With ``uri=true`` a ``file:`` database is a
    SQLite URI: ``sqlite:///file:/srv/s.db?mode=ro&uri=true`` is ``/srv/s.db``, and
    ``file::memory:``, ``mode=memory`` or ``vfs=memdb`` open no file. Without ``uri=true``
    the driver opens ``file:x.db`` as a plain name, and so does this. A relative path stays
    relative: the driver opens it under the current directory.
    """
    plain = plain_sqlite_path(url)
    if plain is not None:
        return plain
    found = _sqlite_url(url)
    return None if found is None else _file_of(*found)


def _file_of(parsed: URL, uri: bool) -> Path | None:
    """``sqlite_file`` of a URL ``_sqlite_url`` has parsed."""
    database = parsed.database or ""
    if not uri:
        return None if database in ("", ":memory:") else Path(database)
    # The name pysqlite hands SQLite: the database, then the query minus its own arguments.
    options = sorted((k, v) for k, v in parsed.query.items() if k not in _PYSQLITE_ARGS)
    name = database + ("?" + "&".join(f"{k}={v}" for k, v in options) if options else "")
    if not name.startswith("file:"):  # with the URI flag, SQLite reads any other as a name
        return None if name in ("", ":memory:") else Path(name)
    return _uri_file(name.removeprefix("file:"))


def _uri_file(uri: str) -> Path | None:
    """The file of a SQLite URI after its ``file:`` (https://www.sqlite.org/uri.html)."""
    path, _, query = uri.split("#", 1)[0].partition("?")
    if path.startswith("//"):
        authority, slash, rest = path[2:].partition("/")
        if authority not in ("", "localhost"):
            return None  # SQLite refuses it ("invalid uri authority")
        path = slash + rest
    # Not parse_qs: SQLite decodes %-escapes but not '+'; a repeated name's last value wins.
    params = {unquote(k): unquote(v) for k, _, v in (p.partition("=") for p in query.split("&"))}
    path = unquote(path)
    if path in ("", ":memory:") or params.get("mode") == "memory" or params.get("vfs") == "memdb":
        return None  # in memory, or a temporary file SQLite deletes on close
    return Path(path)


def state_dir(url: str | None) -> Path:
    """Where the agents of a store keep files (fixer backups…): the folder of its SQLite
    file, else ``.devskyy`` under the current directory (in memory, PostgreSQL, no store)."""
    path = sqlite_file(url) if url else None
    return Path(DEFAULT_DIR) if path is None else path.parent


def absolute_sqlite_url(url: str, cwd: Path) -> str:
    """``url`` with a relative SQLite file made absolute under ``cwd``; any other as is.

    For processes that may not share this one's current directory (Dask workers). The
    driver and query stay as written; ``file:`` URIs stay URIs.
    """
    found = _sqlite_url(url)
    path = None if found is None else _file_of(*found)
    if found is None or path is None or path.is_absolute():
        return url
    parsed, uri = found
    database = parsed.database or ""
    if uri and database.startswith("file:"):
        tail = database.removeprefix("file:")
        cut = min((i for i in (tail.find("?"), tail.find("#")) if i >= 0), default=len(tail))
        database = "file:" + _escape(str(cwd / path), "%?#") + tail[cut:]
    else:
        database = str(cwd / database)
    head, sep, query = url.partition("?")
    return f"{head.partition(':///')[0]}:///{_escape(database, '%?')}{sep}{query}"


def _escape(text: str, chars: str) -> str:
    """``text`` with each of ``chars`` %-escaped (``%`` itself first)."""
    for char in chars:
        text = text.replace(char, f"%{ord(char):02X}")
    return text


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


def reason(exc: DBAPIError) -> str:
    """The driver's first line of ``exc``, without the SQL SQLAlchemy appends."""
    text = str(exc.orig).strip() if exc.orig is not None else ""
    return text.splitlines()[0] if text else type(exc.orig or exc).__name__


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


# Driver messages (SQLite's, PostgreSQL's) and what a person can do about each.
_STORE_ERRORS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (
        ("readonly database", "read-only", "read only", "permission denied for"),
        "is read-only",
        "run as a user who may write it (and, for SQLite, its folder) or use another --state",
    ),
    (
        ("unable to open database file", 'database "'),
        "cannot be opened",
        "check that the file and its folder exist and are readable and writable",
    ),
    (
        ("database is locked", "lock timeout", "could not obtain lock"),
        "is busy",
        "another process held a lock past the wait; try again",
    ),
    (
        ("malformed", "file is not a database", "not a database"),
        "is damaged",
        "restore it from a backup",
    ),
    (
        ("disk i/o error", "no space left", "database or disk is full"),
        "cannot be written",
        "check the disk and the file system it is on",
    ),
    (
        ("no such table", "no such column", 'relation "'),
        "lacks a table or column this devskyy needs",
        "run `devskyy migrate`, or restore the store from a backup",
    ),
    (
        ("invalid keyword argument", "invalid connection option", "unrecognized parameter"),
        "has an option the driver does not support",
        "remove it from the URL",
    ),
)


def store_error_message(
    exc: BaseException, url: str | None = None, *, opening: bool = False
) -> str | None:
    """One line for a driver error from the store: what failed and what to do; no SQL.

    None when ``exc`` is not a database error (the caller treats it as a bug).
    ``opening``: the error came while opening the store (an unreachable server).
    """
    import sqlite3  # noqa: PLC0415 - only on an error path

    from sqlalchemy.exc import DBAPIError  # noqa: PLC0415 - see the imports

    if isinstance(exc, sqlite3.Error):
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    elif isinstance(exc, DBAPIError):
        detail = reason(exc)
    else:
        return None
    where = f"the state store {shown_url(url)}" if url else "the state store"
    lowered = detail.lower()
    for needles, what, todo in _STORE_ERRORS:
        if any(n in lowered for n in needles):
            return f"{where} {what} ({detail}): {todo}"
    return f"cannot open {where}: {detail}" if opening else f"{where} failed: {detail}"


def corrupt_row(table: str, key: dict[str, object], problem: str, remedy: str) -> StateError:
    """The error for a stored row that cannot be read, named by table and key."""
    keys = ", ".join(f"{k}={v}" for k, v in key.items())
    return StateError(f"store row {table}({keys}) {problem} ({remedy})")


def corrupt_json(
    text: object, table: str, key: dict[str, object], column: str, remedy: str
) -> StateError | None:
    """The error naming a stored JSON column that does not decode (None: it does).

    Past the limits of ``model.jsonlimits`` it is ``StoredValueTooDeep`` (found in one
    linear pass, before ``json.loads`` could recurse into it). An empty ``column`` names the
    row itself (a resource row is its document).
    """
    subject = f"{column} is" if column else "is"
    if not isinstance(text, str | bytes):
        return corrupt_row(table, key, f"{subject} not JSON text but {type(text).__name__}", remedy)
    try:
        bounded_loads(text)
    except JsonLimitError as exc:
        deep = corrupt_row(table, key, f"{subject} not valid JSON: {exc}", remedy)
        return StoredValueTooDeep(str(deep), str(exc))
    except ValueError as exc:
        return corrupt_row(table, key, f"{subject} not valid JSON: {exc}", remedy)
    return None


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


def shown_url(url: str) -> str:
    """``url`` fit for messages: the password, if any, is replaced by ``***``."""
    if "@" not in url:
        return url  # no user part, so no password
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - see the imports
    from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

    try:
        parsed = make_url(url)
        # Rendering re-quotes the database part (file: URIs); only a password needs it.
        return url if parsed.password is None else parsed.render_as_string(hide_password=True)
    except ArgumentError:
        return re.sub(r":[^:/@]*@", ":***@", url)


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
