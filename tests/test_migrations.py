"""Schema migrations: new stores at head, old stores refused until ``devskyy migrate``,
the 0.1.0 store upgraded intact, and models that never drift from the migrations."""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import Engine, create_engine, text

from devskyy.adapters import store_schema
from devskyy.adapters.db import metadata, open_engine, register_all_tables
from devskyy.adapters.run_store import SqlRunStore
from devskyy.adapters.store_schema import SchemaState
from devskyy.cli import main
from devskyy.errors import StateError
from devskyy.model.runs import (
    RunRecord,
    RunStatus,
    RunWrite,
    StepEvent,
    StepRecord,
    StepStatus,
)

DATA = Path(__file__).parent / "data"
STORE_010 = DATA / "store-0.1.0.db"


def _tables(path: Path) -> dict[str, list[str]]:
    """Each table of a SQLite file and its columns."""
    with sqlite3.connect(path) as db:
        names = [
            r[0]
            for r in db.execute("select name from sqlite_master where type='table' order by name")
        ]
        return {n: [c[1] for c in db.execute(f"pragma table_info({n})")] for n in names}


def _rows(path: Path, columns: dict[str, list[str]]) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the given tables, limited to the given columns, sorted."""
    with sqlite3.connect(path) as db:
        return {
            table: sorted(db.execute(f"select {', '.join(cols)} from {table}").fetchall(), key=repr)
            for table, cols in columns.items()
        }


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    path = tmp_path / "state.db"
    shutil.copyfile(STORE_010, path)
    return path


def _drift(conn: object) -> list[object]:
    register_all_tables()
    context = MigrationContext.configure(conn, opts={"compare_type": True})  # type: ignore[arg-type]
    return list(compare_metadata(context, metadata))


def test_the_fast_head_lookup_agrees_with_alembic() -> None:
    engine = create_engine("sqlite://")
    with engine.connect() as conn:
        script = ScriptDirectory.from_config(store_schema.alembic_config(conn))
        assert script.get_heads() == [store_schema.head()]
        walked = {s.revision: s.down_revision for s in script.walk_revisions()}
    assert walked == store_schema.script_revisions()
    assert store_schema.script_revisions()[store_schema.BASELINE] is None


def test_migrations_from_nothing_build_exactly_the_models(tmp_path: Path) -> None:
    """Fails when a table or column changes without its migration (the recipe:
    ``python -m devskyy.migrations new "what changed"``, docs/architecture.md)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    with engine.begin() as conn:
        command.upgrade(store_schema.alembic_config(conn), "head")
    with engine.connect() as conn:
        drift = _drift(conn)
        assert drift == [], f"models and migrations differ, add a migration: {drift}"
        version = conn.execute(text("select version_num from alembic_version")).scalar()
    assert version == store_schema.head()
    engine.dispose()


def test_a_new_store_is_created_at_head_and_private(tmp_path: Path) -> None:
    folder = tmp_path / ".devskyy"
    engine = open_engine(f"sqlite:///{folder / 'state.db'}")
    with engine.connect() as conn:
        found = store_schema.status(conn)
        assert _drift(conn) == []
    engine.dispose()
    assert (found.state, found.revision) == (SchemaState.CURRENT, store_schema.head())
    assert stat.S_IMODE((folder / "state.db").stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_two_processes_creating_one_store_at_once_both_open_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def opener() -> None:
        try:
            barrier.wait()
            open_engine(url).dispose()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("select version_num from alembic_version").fetchall() == [
            (store_schema.head(),)
        ]


def test_a_0_1_0_store_is_refused_naming_migrate_and_left_alone(old_store: Path) -> None:
    columns = _tables(old_store)
    before = _rows(old_store, columns)
    url = f"sqlite:///{old_store}"
    with pytest.raises(StateError) as err:
        open_engine(url)
    assert str(err.value) == (
        f"the state store {url} has no schema version (made by devskyy 0.1.0) and this "
        f"devskyy needs {store_schema.head()}: run `devskyy migrate` (with the same --state) "
        "to upgrade it"
    )
    assert _tables(old_store) == columns  # no version table, nothing created or altered
    assert _rows(old_store, columns) == before


@pytest.mark.parametrize("command_args", [["history"], ["get", "agents"], ["runs", "list"]])
def test_commands_on_a_0_1_0_store_print_one_line_naming_migrate(
    old_store: Path, command_args: list[str]
) -> None:
    result = CliRunner().invoke(main, ["--state", f"sqlite:///{old_store}", *command_args])
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1
    assert result.output.startswith("error: the state store sqlite:///")
    assert "run `devskyy migrate`" in result.output


def test_migrate_upgrades_the_0_1_0_store_with_everything_intact(old_store: Path) -> None:
    old_columns = _tables(STORE_010)
    old_rows = _rows(STORE_010, old_columns)
    assert {t: len(r) for t, r in old_rows.items() if t in ("revisions", "runs", "api_keys")} == {
        "revisions": 3,
        "runs": 2,
        "api_keys": 2,
    }
    url = f"sqlite:///{old_store}"
    runner = CliRunner()

    check = runner.invoke(main, ["--state", url, "migrate", "--check"])
    assert (check.exit_code, check.output) == (
        2,
        f"{url}: unversioned (revision none, head {store_schema.head()})\n",
    )
    done = runner.invoke(main, ["--state", url, "migrate"])
    assert done.exit_code == 0, done.output
    backup = old_store.with_name("state.db.before-0.1.0")
    assert done.output == (
        f"migrated {url} from no version (0.1.0) to {store_schema.head()}\nbackup: {backup}\n"
    )
    assert (_tables(backup), _rows(backup, old_columns)) == (old_columns, old_rows)
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600

    assert _rows(old_store, old_columns) == old_rows  # every 0.1.0 row, as it was
    engine = open_engine(url)
    with engine.connect() as conn:
        assert _drift(conn) == []
    engine.dispose()
    again = runner.invoke(main, ["--state", url, "migrate"])
    assert again.output == f"{url} is at schema {store_schema.head()}: nothing to do\n"
    assert runner.invoke(main, ["--state", url, "migrate", "--check"]).exit_code == 0

    history = runner.invoke(main, ["--state", url, "history"])
    assert history.exit_code == 0, history.output
    assert [line.split()[0] for line in history.output.splitlines()[1:]] == ["1", "2", "3"]
    verify = runner.invoke(main, ["--state", url, "audit", "--verify"])
    assert verify.exit_code == 0, verify.output
    assert "intact: 6 event(s)" in verify.output


def test_a_store_from_a_newer_devskyy_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    open_engine(url).dispose()
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute("update alembic_version set version_num = '9999'")
    with pytest.raises(StateError) as err:
        open_engine(url)
    assert str(err.value) == (
        f"the state store {url} has schema revision 9999, which this devskyy does not know "
        f"(its newest is {store_schema.head()}): a newer devskyy wrote it; upgrade devskyy "
        "to use this store"
    )
    result = CliRunner().invoke(main, ["--state", url, "migrate"])
    assert (result.exit_code, result.output) == (1, f"error: {err.value}\n")


def test_an_unversioned_store_that_is_not_0_1_0_is_refused_by_migrate(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        for table, columns in _tables(STORE_010).items():
            kept = [c for c in columns if not (table == "run_step_events" and c == "run_id")]
            db.execute(f"create table {table} ({', '.join(kept)})")
    before = _tables(path)
    url = f"sqlite:///{path}"
    result = CliRunner().invoke(main, ["--state", url, "migrate"])
    assert (result.exit_code, result.output) == (
        1,
        f"error: the state store {url} has no schema version and is not a devskyy 0.1.0 "
        "store (table 'run_step_events' has no column 'run_id'); move it aside (or use "
        "--state with a new URL) and apply again\n",
    )
    assert _tables(path) == before  # nothing stamped, nothing created


def test_migrate_creates_an_empty_store_at_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    result = CliRunner().invoke(main, ["--state", url, "migrate", "-o", "json"])
    assert result.exit_code == 0, result.output
    assert '"state": "current"' in result.output
    assert '"before": null' in result.output


def test_a_store_behind_head_is_refused_then_migrated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = open_engine(url)
    with engine.begin() as conn:  # as a store last opened by an older devskyy
        command.downgrade(store_schema.alembic_config(conn), store_schema.BASELINE)
    engine.dispose()
    head = store_schema.head()
    if head == store_schema.BASELINE:
        pytest.skip("no migration after the baseline yet")
    with pytest.raises(StateError) as err:
        open_engine(url)
    assert str(err.value) == (
        f"the state store {url} has schema revision {store_schema.BASELINE} and this devskyy "
        f"needs {head}: run `devskyy migrate` (with the same --state) to upgrade it"
    )
    result = CliRunner().invoke(main, ["--state", url, "migrate"])
    assert result.output.splitlines()[0] == (
        f"migrated {url} from {store_schema.BASELINE} to {head}"
    )
    engine = open_engine(url)
    with engine.connect() as conn:
        assert _drift(conn) == []
    engine.dispose()


def test_the_generator_writes_the_next_migration_from_the_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-file recipe: declare a table, run ``new``, get ``rNNNN_<slug>.py``."""
    from sqlalchemy import Column, Integer, String, Table  # noqa: PLC0415

    from devskyy.migrations.__main__ import new  # noqa: PLC0415

    copy = tmp_path / "migrations"
    shutil.copytree(store_schema.MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(store_schema, "MIGRATIONS", copy)
    monkeypatch.setattr(store_schema, "VERSIONS", copy / "versions")
    store_schema.script_revisions.cache_clear()
    before = store_schema.head()
    register_all_tables()
    extra = Table("test_leases", metadata, Column("name", String(63), primary_key=True))
    extra.append_column(Column("generation", Integer, nullable=False))
    try:
        path = new("test leases")
        after = store_schema.head()
    finally:
        metadata.remove(extra)
        store_schema.script_revisions.cache_clear()
    assert path == copy / "versions" / f"r{int(before) + 1:04d}_test_leases.py"
    assert after == f"{int(before) + 1:04d}"
    text = path.read_text()
    assert f"down_revision = {before!r}" in text
    assert (
        'op.create_table(\n        "test_leases",' in text
        or "op.create_table('test_leases'" in text
    )


def _plans(path: Path) -> dict[str, tuple[object, list[str]]]:
    """Each run's stored plan, and the names of its step rows by position."""
    with sqlite3.connect(path) as db:
        return {
            run_id: (
                plan,
                [
                    r[0]
                    for r in db.execute(
                        "select name from run_steps where run_id = ? order by position", (run_id,)
                    )
                ],
            )
            for run_id, plan in db.execute("select id, step_names from runs")
        }


def _downgraded_rows(engine: Engine, revision: str, query: str) -> list[tuple[object, ...]]:
    """Downgrade the store to ``revision``, then the rows of ``query`` (in one transaction)."""
    with engine.begin() as conn:
        command.downgrade(store_schema.alembic_config(conn), revision)
        return [tuple(r) for r in conn.execute(text(query)).all()]


def downgrade_a_new_run_to_0009(engine: Engine) -> tuple[RunRecord, list[tuple[object, ...]]]:
    """A run created at head, one of its two steps changed, then the store downgraded to
    0009: the run as read before, and its ``run_steps`` rows after (name, position,
    status). Shared with the PostgreSQL test."""
    store = SqlRunStore(engine)
    store.create(
        RunRecord("new", "wf", {}, RunStatus.PENDING, 1.0, steps=(StepRecord("a"), StepRecord("b")))
    )
    store.write(RunWrite("new", steps=(StepRecord("b", StepStatus.RUNNING, 1, 2.0),)))
    before = store.get("new")
    return before, _downgraded_rows(
        engine,
        "0009",
        "SELECT name, position, status FROM run_steps WHERE run_id = 'new' ORDER BY position",
    )


def test_0010_gives_old_runs_their_plan_and_writes_pending_rows_back_down(
    old_store: Path,
) -> None:
    """The 0.1.0 runs get their plan from their step rows (by position), and read back
    the same; downgrading writes the pending rows a run created at head does not have."""
    url = f"sqlite:///{old_store}"
    assert CliRunner().invoke(main, ["--state", url, "migrate"]).exit_code == 0
    plans = _plans(old_store)
    assert len(plans) == 2
    for plan, rows in plans.values():
        assert plan is not None
        assert json.loads(str(plan)) == rows != []
    engine = open_engine(url)
    store = SqlRunStore(engine)
    for run_id, (_, rows) in plans.items():
        assert [s.name for s in store.get(run_id).steps] == rows
    before, new_rows = downgrade_a_new_run_to_0009(engine)
    engine.dispose()
    assert new_rows == [("a", 0, "pending"), ("b", 1, "running")]
    assert CliRunner().invoke(main, ["--state", url, "migrate"]).exit_code == 0
    engine = open_engine(url)
    assert SqlRunStore(engine).get("new") == before
    engine.dispose()


def downgrade_an_ended_step_to_0010(
    engine: Engine,
) -> tuple[list[StepEvent], list[tuple[object, ...]]]:
    """A run at head whose step ``a`` ended with its row standing for its end event (and
    ``b`` started earlier, an event row), then the store downgraded to 0010: the run's
    event log as read before, and its event rows after (step, status, attempt, at,
    started_at), in row order. Shared with the PostgreSQL test."""
    store = SqlRunStore(engine)
    store.create(
        RunRecord(
            "ended", "wf", {}, RunStatus.PENDING, 1.0, steps=(StepRecord("a"), StepRecord("b"))
        )
    )
    store.write(
        RunWrite(
            "ended",
            steps=(
                StepRecord("a", StepStatus.SUCCEEDED, 1, 3.0, 4.0, 1.0, output={"n": 1}),
                StepRecord("b", StepStatus.RUNNING, 1, 2.0),
            ),
            events=(StepEvent("b", StepStatus.RUNNING, 1, 2.0),),
            row_events=frozenset({"a"}),
        )
    )
    before = store.events("ended")
    return before, _downgraded_rows(
        engine,
        "0010",
        "SELECT step, status, attempt, at, started_at FROM run_step_events "
        "WHERE run_id = 'ended' ORDER BY id",
    )


def test_0011_writes_the_ends_that_rows_stood_for_back_as_event_rows_down(tmp_path: Path) -> None:
    """Down to 0010 a step row's end event becomes an event row (older readers read only
    those); up again the run's log reads the same."""
    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = open_engine(url)
    before, rows = downgrade_an_ended_step_to_0010(engine)
    assert [(e.step, e.status.value) for e in before] == [("b", "running"), ("a", "succeeded")]
    assert rows == [("b", "running", 1, 2.0, None), ("a", "succeeded", 1, 4.0, 3.0)]
    with engine.begin() as conn:
        command.upgrade(store_schema.alembic_config(conn), "head")
    assert SqlRunStore(engine).events("ended") == before
    engine.dispose()
