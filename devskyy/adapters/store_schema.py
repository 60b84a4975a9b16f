"""The store's schema version: create a new store at head, refuse one that is behind, upgrade.

Every store carries the Alembic revision of its schema in ``alembic_version``. Opening a
store (``db.open_engine``) only reads that row and compares it with the head of the shipped
migrations (``devskyy/migrations/versions``): a store at head opens; an empty store is
created at head (``create_all`` and a stamp, in one locked transaction); anything else is a
``StateError`` that says what to do: a store that is behind (or has no version: 0.1.0 made
none) names ``devskyy migrate``; a revision this devskyy does not know means a newer one
wrote it. Nothing ever runs ``create_all`` over an existing schema.

``migrate`` upgrades in one transaction (SQLite gets ``BEGIN IMMEDIATE``, PostgreSQL an
advisory lock), so two processes cannot migrate at once and a failure changes nothing.

The head is found by reading the revision files' ``revision``/``down_revision`` lines
(``ast.literal_eval`` of their values; no Alembic import, no parse of whole files on the
way to every command); Alembic itself is imported only to create, stamp or upgrade. A
test checks that both agree.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from devskyy.adapters import db
from devskyy.adapters.db import register_all_tables
from devskyy.adapters.store_url import shown_url, sqlite_file
from devskyy.errors import StateError

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Connection, Engine

# SQLAlchemy is imported by the functions that use it: opening a store at head only reads
# ``head()`` (``db.open_engine``), and `devskyy run` does not import SQLAlchemy for that.

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
VERSIONS = MIGRATIONS / "versions"
BASELINE = "0001"
VERSION_TABLE = "alembic_version"
# pg_advisory_xact_lock key of schema changes ("dvsk" in ASCII), one per database.
_PG_LOCK = 0x6476736B


class SchemaState(StrEnum):
    """Where a store's schema stands against this devskyy's migrations."""

    CURRENT = "current"
    EMPTY = "empty"  # no devskyy table yet
    UNVERSIONED = "unversioned"  # devskyy tables without a version: made by 0.1.0
    BEHIND = "behind"
    UNKNOWN = "unknown"  # a revision this devskyy does not ship: a newer devskyy wrote it


@dataclass(frozen=True)
class SchemaStatus:
    """A store's schema state and its revision (None when it has none)."""

    state: SchemaState
    revision: str | None
    head: str


# ``revision = "0008"`` / ``down_revision = None``: one line each at the top level, as
# Alembic's template writes them (parsing whole files with ast cost ~2 ms each, on the way
# to every command). Another form reads as missing, which the error below names.
_ASSIGNMENT = re.compile(
    r"^(revision|down_revision)[ \t]*(?::[^=\n]*)?=[ \t]*([^#\n]*?)[ \t]*(?:#.*)?$", re.MULTILINE
)


@functools.cache
def script_revisions() -> dict[str, str | None]:
    """Each shipped revision id and the revision it follows, read from the files."""
    found: dict[str, str | None] = {}
    for path in sorted(VERSIONS.glob("r*.py")):
        values: dict[str, object] = {}
        for name, value in _ASSIGNMENT.findall(path.read_text(encoding="utf-8")):
            with suppress(ValueError, SyntaxError):  # not a literal: missing
                values[name] = ast.literal_eval(value)
        revision, down = values.get("revision"), values.get("down_revision")
        if not isinstance(revision, str) or not (down is None or isinstance(down, str)):
            raise StateError(f"migration {path.name} lacks a string revision and down_revision")
        found[revision] = down
    return found


def head() -> str:
    """The one revision no other follows; two heads are a developer error, named."""
    revisions = script_revisions()
    parents = set(revisions.values())
    heads = sorted(r for r in revisions if r not in parents)
    if len(heads) != 1:
        raise StateError(
            f"the shipped migrations have {len(heads)} heads ({', '.join(heads) or 'none'}): "
            "renumber the newest migration to follow the other"
        )
    return heads[0]


def status(conn: Connection) -> SchemaStatus:
    """Where the store on ``conn`` stands (reads ``alembic_version`` and table names)."""
    from sqlalchemy import inspect, text  # noqa: PLC0415 - see the imports

    tip = head()
    inspector = inspect(conn)
    if inspector.has_table(VERSION_TABLE):
        rows = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()  # noqa: S608 - a constant
        if len(rows) == 1:
            revision = str(rows[0])
            if revision == tip:
                return SchemaStatus(SchemaState.CURRENT, revision, tip)
            if revision in script_revisions():
                return SchemaStatus(SchemaState.BEHIND, revision, tip)
            return SchemaStatus(SchemaState.UNKNOWN, revision, tip)
    register_all_tables()
    ours = set(db.metadata.tables) & set(inspector.get_table_names())
    state = SchemaState.UNVERSIONED if ours else SchemaState.EMPTY
    return SchemaStatus(state, None, tip)


def behind_message(url: str, found: SchemaStatus) -> str:
    """The one-line error for a store this devskyy must not open before ``devskyy migrate``."""
    where = shown_url(url)
    if found.state is SchemaState.UNKNOWN:
        return (
            f"the state store {where} has schema revision {found.revision}, which this devskyy "
            f"does not know (its newest is {found.head}): a newer devskyy wrote it; upgrade "
            "devskyy to use this store"
        )
    was = (
        "no schema version (made by devskyy 0.1.0)"
        if found.revision is None
        else (f"schema revision {found.revision}")
    )
    return (
        f"the state store {where} has {was} and this devskyy needs {found.head}: "
        "run `devskyy migrate` (with the same --state) to upgrade it"
    )


@contextmanager
def locked(engine: Engine) -> Iterator[Connection]:
    """One transaction that holds the store's schema lock until it ends.

    Python's sqlite3 would run DDL outside any transaction (it opens one only before DML),
    so SQLite gets an explicit ``BEGIN IMMEDIATE``: DDL and data commit together, and a
    second process waits on the busy timeout. PostgreSQL's DDL is transactional; an
    advisory lock makes concurrent creators queue instead of racing on the catalog.
    """
    from sqlalchemy import text  # noqa: PLC0415 - see the imports

    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        yield conn


def prepare(engine: Engine, url: str) -> None:
    """Open-time check: pass a store at head, create an empty one at head, refuse the rest."""
    with engine.connect() as conn:
        found = status(conn)
    if found.state is SchemaState.CURRENT:
        return
    if found.state is SchemaState.EMPTY:
        with locked(engine) as conn:
            again = status(conn)  # another process may have created it meanwhile
            if again.state is SchemaState.EMPTY:
                create_at_head(conn)
                return
            found = again
        if found.state is SchemaState.CURRENT:
            return
    raise StateError(behind_message(url, found))


def create_at_head(conn: Connection) -> None:
    """Every table as the models declare them, stamped with the head revision."""
    register_all_tables()
    db.metadata.create_all(conn)
    _stamp(conn, head())


def alembic_config(conn: Connection) -> Config:
    """Alembic's configuration, in code: the shipped scripts, ``conn`` for ``env.py``."""
    from alembic.config import Config  # noqa: PLC0415 - Alembic only when the schema changes

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "r%%(rev)s_%%(slug)s")
    config.attributes["connection"] = conn
    return config


def _stamp(conn: Connection, revision: str) -> None:
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415 - see alembic_config
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    script = ScriptDirectory.from_config(alembic_config(conn))
    MigrationContext.configure(conn).stamp(script, revision)


@dataclass(frozen=True)
class MigrateResult:
    """What ``migrate`` did: the revision before (None: none) and after, and whether it changed."""

    before: str | None
    after: str
    created: bool = False

    @property
    def changed(self) -> bool:
        return self.created or self.before != self.after


def migrate(engine: Engine, url: str) -> MigrateResult:
    """Bring the store to head in one locked transaction (create it if it is empty)."""
    from alembic import command  # noqa: PLC0415 - see alembic_config

    with locked(engine) as conn:
        found = status(conn)
        if found.state is SchemaState.CURRENT:
            return MigrateResult(found.revision, found.head)
        if found.state is SchemaState.EMPTY:
            create_at_head(conn)
            return MigrateResult(None, found.head, created=True)
        if found.state is SchemaState.UNKNOWN:
            raise StateError(behind_message(url, found))
        if found.state is SchemaState.UNVERSIONED:
            _check_baseline(conn, url)
            _stamp(conn, BASELINE)
        command.upgrade(alembic_config(conn), "head")
        return MigrateResult(found.revision, found.head)


def _check_baseline(conn: Connection, url: str) -> None:
    """Refuse an unversioned store that is not 0.1.0's schema (a table or column missing)."""
    from alembic.operations import Operations  # noqa: PLC0415
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415 - see alembic_config
    from alembic.script import ScriptDirectory  # noqa: PLC0415
    from sqlalchemy import MetaData, create_engine, inspect  # noqa: PLC0415

    # The baseline's tables, as its migration creates them, in a scratch in-memory store.
    scratch = create_engine("sqlite://")
    with scratch.begin() as scratch_conn:
        script = ScriptDirectory.from_config(alembic_config(scratch_conn))
        baseline = script.get_revision(BASELINE)
        assert baseline is not None
        assert baseline.module is not None
        with Operations.context(MigrationContext.configure(scratch_conn)):
            baseline.module.upgrade()
        expected = MetaData()
        expected.reflect(scratch_conn)
    scratch.dispose()
    inspector = inspect(conn)
    have = set(inspector.get_table_names())
    for table in expected.sorted_tables:
        if table.name not in have:
            problem = f"it has no table {table.name!r}"
        else:
            columns = {c["name"] for c in inspector.get_columns(table.name)}
            missing = [c.name for c in table.columns if c.name not in columns]
            if not missing:
                continue
            problem = f"table {table.name!r} has no column {missing[0]!r}"
        raise StateError(
            f"the state store {shown_url(url)} has no schema version and is not a devskyy "
            f"0.1.0 store ({problem}); move it aside (or use --state with a new URL) "
            "and apply again"
        )


def backup_sqlite(engine: Engine, label: str) -> Path | None:
    """Copy a SQLite file store beside itself before a migration; None for other stores.

    The copy (``state.db.before-<label>``, or ``…-2``, ``…-3`` if taken) is made with
    SQLite's online backup, so it is consistent even with a writer active, and is created
    0600 like the store.
    """
    if engine.dialect.name != "sqlite":
        return None
    # The file SQLite opens: a file: URI (uri=true) names it differently from a path.
    source = sqlite_file(engine.url.render_as_string(hide_password=False))
    if source is None:
        return None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for attempt in range(1, 100):
        suffix = f".before-{label}" + (f"-{attempt}" if attempt > 1 else "")
        target = source.with_name(source.name + suffix)
        try:
            os.close(os.open(target, flags, 0o600))
        except FileExistsError:
            continue
        break
    else:
        raise StateError(f"cannot name a backup of {source}: 99 backups exist beside it")
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    return target
