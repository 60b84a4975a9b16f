"""Store errors in words: a driver error as one line saying what to do, a bad stored row named.

``store_error_message`` maps SQLite's and PostgreSQL's messages (through SQLAlchemy or
the stdlib driver) to what failed and what a person can do, without the SQL statement;
``corrupt_row`` and ``corrupt_json`` name a stored row that cannot be read by table and key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devskyy.adapters.store_url import shown_url
from devskyy.errors import StateError, StoredValueTooDeep
from devskyy.model.jsonlimits import JsonLimitError, bounded_loads

if TYPE_CHECKING:
    from sqlalchemy.exc import DBAPIError


def reason(exc: DBAPIError) -> str:
    """The driver's first line of ``exc``, without the SQL SQLAlchemy appends."""
    text = str(exc.orig).strip() if exc.orig is not None else ""
    return text.splitlines()[0] if text else type(exc.orig or exc).__name__


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
