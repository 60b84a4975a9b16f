"""Reading a state store URL (pure but for the environment and the current folder).

The URL in force (``--state``, ``DEVSKYY_STATE_URL``, else SQLite at ``.devskyy/state.db``
under the current folder), the file a SQLite URL opens (``sqlite_file``: as SQLAlchemy and
SQLite read it, ``file:`` URIs and queries included), the folder agents keep files in beside
it (``state_dir``), the URL made absolute for another process (``absolute_sqlite_url``), and
the URL fit for messages (``shown_url``). A plain file URL (``sqlite:///path``) is read
without SQLAlchemy (``adapters.sqlite_engine.plain_sqlite_path``); any other form through
its URL parser, imported then.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from devskyy.adapters.sqlite_engine import plain_sqlite_path

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

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
