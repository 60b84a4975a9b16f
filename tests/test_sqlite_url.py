"""The one reading of a SQLite state URL (``adapters.db.sqlite_file``, ``state_dir`` and
``absolute_sqlite_url``) and every place that uses it.

The table is checked against the driver itself: each URL is opened with SQLAlchemy from a
working folder whose name needs escaping (``%``, ``?``, ``#``, a space), and the file it
opens is the one ``sqlite_file`` names (a marker row written there first is read back),
or, for an in-memory or temporary database, no file appears at all. Then one test per
caller, each with a URL (a ``file:`` URI, a ``?query``, a ``+driver``) that the string
parsing each caller had before read wrongly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.pool import StaticPool

from devskyy.adapters.db import open_engine
from devskyy.adapters.run_store import SqlRunStore
from devskyy.adapters.sqlite_engine import plain_sqlite_path
from devskyy.adapters.store_url import absolute_sqlite_url, sqlite_file, state_dir
from devskyy.agents.codecheck import backup
from devskyy.cli import main
from devskyy.errors import StateError
from devskyy.model.manifests import Agent
from devskyy.model.runs import RunRecord
from devskyy.runtime.agent import BaseAgent
from devskyy.runtime.dask_runner import absolute_state_url
from devskyy.runtime.dask_worker import AttemptTask, run_attempt, worker_agents
from devskyy.runtime.system import open_system

# (URL, the file it opens). ``{abs}`` is an absolute folder; other paths are relative to
# the working folder.
FILES = [
    ("sqlite:///rel.db", "rel.db"),
    ("sqlite:///my db.db", "my db.db"),
    ("sqlite:///a@b.db", "a@b.db"),
    ("sqlite+pysqlite:///{abs}/a+b.db", "{abs}/a+b.db"),
    ("sqlite:///sub/rel.db", "sub/rel.db"),
    ("sqlite:///{abs}/abs.db", "{abs}/abs.db"),
    ("sqlite:///x.db?timeout=5", "x.db"),
    ("sqlite+pysqlite:///x.db?timeout=5&check_same_thread=false", "x.db"),
    ("sqlite:///my%20db.db", "my db.db"),
    ("sqlite:///file:{abs}/abs.db?mode=ro&uri=true", "{abs}/abs.db"),
    ("sqlite:///file:rel.db?uri=true", "rel.db"),
    ("sqlite:///file:sub/rel.db?mode=rw&uri=true&timeout=5", "sub/rel.db"),
    ("sqlite+pysqlite:///file:rel.db?uri=1", "rel.db"),
    ("sqlite:///file://{abs}/abs.db?uri=true", "{abs}/abs.db"),
    ("sqlite:///file://localhost{abs}/abs.db?uri=true", "{abs}/abs.db"),
    ("sqlite:///file:rel.db%23fragment?uri=true", "rel.db"),
    # SQLite decodes its URI's %-escapes (under SQLAlchemy's), but not '+'.
    ("sqlite:///file:my%2520db.db?uri=true", "my db.db"),
    ("sqlite:///file:a+b.db?uri=true", "a+b.db"),
    # With uri=true a name without file: is a plain name, the query SQLAlchemy appends
    # included: SQLite never reads it as options.
    ("sqlite:///x.db?uri=true", "x.db"),
    ("sqlite:///x.db?mode=ro&uri=true", "x.db?mode=ro"),
    # Without uri=true the driver opens "file:…" as a plain name (no URI is read).
    ("sqlite:///file:x.db", "file:x.db"),
    ("sqlite:///file:x.db?uri=false", "file:x.db"),
]

# SQLite URLs that open no file: in memory, or a temporary file SQLite deletes.
NO_FILE = [
    "sqlite://",
    "sqlite:///",
    "sqlite:///:memory:",
    "sqlite:///:memory:?timeout=5",
    "sqlite+pysqlite:///:memory:",
    "sqlite:///file::memory:?cache=shared&uri=true",
    "sqlite:///file:x.db?mode=memory&cache=shared&uri=true",
    "sqlite:///file:x.db?vfs=memdb&uri=true",
    "sqlite:///file:?uri=true",
    "sqlite:///?uri=true",
]

# Not a SQLite file: another database, not a URL, or one the driver refuses to open.
NOT_SQLITE = [
    "postgresql+psycopg://u@db/devskyy",
    "file::memory:?cache=shared",
    "nonsense",
    "",
    "sqlite://host/x.db",
    "sqlite:///x.db?uri=maybe",
    "sqlite:///file://elsewhere/x.db?uri=true",
]


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A working folder that needs escaping in URLs (the cwd), and an absolute folder."""
    cwd = tmp_path / "cwd %?#"
    (cwd / "sub").mkdir(parents=True)
    (tmp_path / "abs").mkdir()
    monkeypatch.chdir(cwd)
    return {"cwd": cwd, "abs": tmp_path / "abs"}


def _fill(template: str, places: dict[str, Path]) -> str:
    return template.replace("{abs}", str(places["abs"]))


def _mark(path: Path, token: str) -> None:
    # Absolute: this SQLite may be built to read a bare "file:x.db" as a URI (USE_URI).
    with contextlib.closing(sqlite3.connect(path.absolute())) as conn:
        conn.execute("create table mark (token text)")
        conn.execute("insert into mark values (?)", (token,))
        conn.commit()


def _read_mark(url: str) -> Any:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("select token from mark")).scalar_one()
    finally:
        engine.dispose()


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize(("url", "file"), FILES)
def test_sqlite_file_is_the_file_the_driver_opens(
    places: dict[str, Path], url: str, file: str
) -> None:
    url, expected = _fill(url, places), Path(_fill(file, places))
    assert sqlite_file(url) == expected  # a relative file stays relative
    assert state_dir(url) == expected.parent
    _mark(expected, url)
    assert _read_mark(url) == url


PLAIN = [
    "sqlite:///rel.db",
    "sqlite:///sub/rel.db",
    "sqlite:///{abs}/abs.db",
    "sqlite:///my db.db",
    "sqlite:///a@b.db",
    "sqlite+pysqlite:///{abs}/a+b.db",
]


def test_plain_file_urls_are_read_without_sqlalchemy_as_it_reads_them(
    places: dict[str, Path],
) -> None:
    """``plain_sqlite_path`` (what opens a store without SQLAlchemy) names the file
    SQLAlchemy's own parsing names, and declines every other form (a query, a URI, an
    escape, memory), which then goes SQLAlchemy's way."""
    from devskyy.adapters.store_url import _file_of, _sqlite_url  # noqa: PLC0415 - the reference

    for url in [_fill(u, places) for u in [f for f, _ in FILES] + NO_FILE + NOT_SQLITE]:
        plain = plain_sqlite_path(url)
        if plain is None:
            continue
        found = _sqlite_url(url)
        assert found is not None, url
        assert plain == _file_of(*found), url
    accepted = [u for u in [f for f, _ in FILES] + NO_FILE + NOT_SQLITE if plain_sqlite_path(u)]
    assert sorted(accepted) == sorted(PLAIN)


@pytest.mark.parametrize("url", NO_FILE)
def test_in_memory_and_temporary_databases_have_no_file(
    places: dict[str, Path], tmp_path: Path, url: str
) -> None:
    assert sqlite_file(url) is None
    assert state_dir(url) == Path(".devskyy")
    assert absolute_sqlite_url(url, places["cwd"]) == url
    # The pool named: SQLAlchemy warns when it picks one from mode=memory.
    engine = create_engine(url, poolclass=StaticPool)
    try:
        with engine.begin() as conn:
            conn.execute(text("create table t (x integer)"))
    finally:
        engine.dispose()
    assert _files_under(tmp_path) == []


@pytest.mark.parametrize("url", NOT_SQLITE)
def test_other_urls_have_no_sqlite_file(places: dict[str, Path], url: str) -> None:
    assert sqlite_file(url) is None
    assert state_dir(url) == Path(".devskyy")
    assert absolute_sqlite_url(url, places["cwd"]) == url


def test_no_store_keeps_files_in_dot_devskyy() -> None:
    assert state_dir(None) == Path(".devskyy")


@pytest.mark.parametrize(("url", "file"), FILES)
def test_absolute_url_opens_the_same_file_from_anywhere(
    places: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, file: str
) -> None:
    url, expected = _fill(url, places), Path(_fill(file, places))
    absolute = absolute_sqlite_url(url, places["cwd"])
    if expected.is_absolute():
        assert absolute == url
        return
    assert absolute != url
    assert sqlite_file(absolute) == places["cwd"] / expected
    _mark(expected, url)
    monkeypatch.chdir(tmp_path)  # a worker elsewhere
    assert _read_mark(absolute) == url
    assert sqlite_file(url) == expected  # the relative URL now names another file


# One test per caller, each with a URL its own parsing got wrong before.


def test_open_system_gives_agents_the_folder_of_a_file_uri_store(tmp_path: Path) -> None:
    """runtime.system: before, ``file:/…/st`` (the scheme and query kept in the path)."""
    (tmp_path / "st").mkdir()
    url = f"sqlite:///file:{tmp_path}/st/state.db?uri=true&timeout=5"

    async def folder() -> Path:
        system = await open_system(url, start_agents=False)
        try:
            return system.registry.state_dir
        finally:
            await system.close()

    assert asyncio.run(folder()) == tmp_path / "st"
    assert (tmp_path / "st" / "state.db").is_file()


class StateDirAgent(BaseAgent):
    """Answers with the folder the runtime gave it for its files."""

    def __init__(self) -> None:
        super().__init__(agent_name="State Dir Agent", version="1.0.0")

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        return {"state_dir": str(self.context.state_dir)}


@pytest.fixture
def worker_url(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "st").mkdir()
    url = f"sqlite:///file:{tmp_path}/st/state.db?uri=true"
    yield url
    engine = worker_agents().engines.pop(url, None)
    if engine is not None:
        engine.dispose()


def test_a_dask_attempt_gives_its_agent_the_folder_of_a_file_uri_store(
    tmp_path: Path, worker_url: str
) -> None:
    """runtime.dask_worker: before, ``file:/…/st`` as for the system."""
    manifest = Agent.model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "Agent",
            "metadata": {"name": "where"},
            "spec": {"module": f"{__name__}:StateDirAgent"},
        }
    )
    task = AttemptTask(
        agent="where",
        manifest=manifest.model_dump_json(by_alias=True),
        spec_hash=f"state-dir-{tmp_path.name}",
        state_url=worker_url,
        prefixes=(__name__,),
        run_id=None,
        step=None,
        inputs="{}",
    )
    answer = run_attempt(task)
    assert answer.error is None
    assert answer.output is not None
    assert json.loads(answer.output)["state_dir"] == str(tmp_path / "st")


def test_the_dask_runner_makes_file_uris_and_driver_urls_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """runtime.dask_runner: before, both were sent to workers as written (relative)."""
    monkeypatch.chdir(tmp_path)
    assert (
        absolute_state_url("sqlite:///file:rel.db?mode=rw&uri=true")
        == f"sqlite:///file:{tmp_path}/rel.db?mode=rw&uri=true"
    )
    assert (
        absolute_state_url("sqlite+pysqlite:///rel.db?timeout=5")
        == f"sqlite+pysqlite:///{tmp_path}/rel.db?timeout=5"
    )
    assert absolute_state_url("sqlite:///:memory:?timeout=5") == "sqlite:///:memory:?timeout=5"


def test_reading_a_missing_store_named_with_a_driver_and_query_creates_nothing(
    tmp_path: Path,
) -> None:
    """cli._state.missing_sqlite_file: before, only ``sqlite:///`` URLs could be missing,
    so ``get`` opened (and created) this store."""
    url = f"sqlite+pysqlite:///{tmp_path}/state.db?timeout=5"
    result = CliRunner().invoke(main, ["--state", url, "get", "agents", "-o", "json"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert json.loads(result.stdout) == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///file:{tmp}/typo/state.db?uri=true",
        "sqlite+pysqlite:///{tmp}/typo/state.db?timeout=5",
    ],
)
def test_a_store_in_a_missing_folder_is_an_error_for_every_url_form(
    tmp_path: Path, url: str
) -> None:
    """cli._common.check_sqlite_folder: before, both URLs skipped the check (a file: URI
    read as an empty store; a +driver URL created the folder)."""
    url = url.replace("{tmp}", str(tmp_path))
    for args in (["get", "agents"], ["apply", str(tmp_path)]):
        result = CliRunner().invoke(main, ["--state", url, *args])
        assert result.exit_code == 1, args
        assert result.stderr == (
            f"error: state store {url}: the folder {tmp_path}/typo does not exist "
            "(create it, or correct --state / DEVSKYY_STATE_URL)\n"
        )
    assert list(tmp_path.iterdir()) == []


def test_a_store_url_naming_a_folder_is_an_error_whatever_its_query(tmp_path: Path) -> None:
    url = f"sqlite:///file:{tmp_path}?uri=true&timeout=5"
    result = CliRunner().invoke(main, ["--state", url, "get", "agents"])
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: state store {url} is a folder; name a file in it (sqlite:///{tmp_path}/state.db)\n"
    )


def test_restore_by_run_id_finds_the_backup_next_to_a_file_uri_store(tmp_path: Path) -> None:
    """cli.fixes: before, the backups were looked for under ``file:/…/st``."""
    store, tree = tmp_path / "st", tmp_path / "ws"
    store.mkdir()
    tree.mkdir()
    url = f"sqlite:///file:{store}/state.db?uri=true&timeout=5"
    engine = open_engine(url)
    try:
        # A run whose fix step never recorded its output (killed mid-fix).
        SqlRunStore(engine).create(RunRecord(id="run1", workflow="fixflow"))
    finally:
        engine.dispose()
    original, fixed = b"import os\n\nX = 1\n", b"X = 1\n"
    saved = backup.create(
        backup.new_backup_dir(state_dir(url), 0.0, run_id="run1"),
        tree,
        {"a.py": original},
        0.0,
        {"a.py": fixed},
        run={"run_id": "run1", "step": "fix"},
    )
    assert saved.parent == store / "backups"
    (tree / "a.py").write_bytes(fixed)
    result = CliRunner().invoke(main, ["--state", url, "restore", "run1", "-o", "json"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert json.loads(result.stdout) == {
        "backup_path": str(saved),
        "root": str(tree),
        "files": ["a.py"],
    }
    assert (tree / "a.py").read_bytes() == original


@pytest.mark.parametrize("url", ["sqlite:///file:x.db", "sqlite+pysqlite:///state.db?timeout=5"])
def test_a_new_store_file_is_made_private_whatever_the_url_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """open_engine creates a new store's file 0600 before SQLite does; a plain file whose
    name starts with ``file:`` (no ``uri=true``) used to be left to the umask."""
    monkeypatch.chdir(tmp_path)
    path = sqlite_file(url)
    assert path is not None
    engine = open_engine(url)
    engine.dispose()
    assert (tmp_path / path).stat().st_mode & 0o777 == 0o600


def test_a_sqlite_uri_store_is_not_created_ahead_of_sqlite(tmp_path: Path) -> None:
    """With ``uri=true`` the URI may open read-only: devskyy creates no file for it."""
    db = tmp_path / "state.db"
    with pytest.raises(StateError):
        open_engine(f"sqlite:///file:{db}?mode=ro&uri=true")
    assert not db.exists()
