"""Schema migrations on PostgreSQL: no drift, and the 0.1.0 store's content upgraded intact.

PostgreSQL cannot open the committed SQLite file, so the test builds the same store there:
the baseline migration creates 0.1.0's schema, every row of ``tests/data/store-0.1.0.db`` is
copied in, and the version table is dropped (0.1.0 kept none). ``devskyy migrate`` must then
upgrade it with its revisions, runs, keys and audit chain intact.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from pg_server import fresh_database
from sqlalchemy import Engine, MetaData, create_engine, inspect, select, text
from test_migrations import (
    STORE_010,
    downgrade_a_new_run_to_0009,
    downgrade_an_ended_step_to_0010,
)

from devskyy.adapters import store_schema
from devskyy.adapters.db import metadata, open_engine, register_all_tables
from devskyy.adapters.run_store import SqlRunStore
from devskyy.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture
def pg_url(server_url: str) -> Iterator[str]:
    with fresh_database(server_url) as url:
        yield url


def _content(engine: Engine, columns: dict[str, list[str]]) -> dict[str, list[Any]]:
    """Every row of the given tables and columns, decoded by the models' types, sorted."""
    register_all_tables()
    out: dict[str, list[Any]] = {}
    with engine.connect() as conn:
        for name, cols in columns.items():
            table = metadata.tables[name]
            rows = conn.execute(select(*(table.c[c] for c in cols))).all()
            out[name] = sorted((tuple(_naive_utc(v) for v in r) for r in rows), key=repr)
    return out


def _naive_utc(value: Any) -> Any:
    # SQLite hands back naive UTC datetimes, PostgreSQL aware ones: compare the instants.
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _baseline_columns() -> dict[str, list[str]]:
    source = create_engine(f"sqlite:///{STORE_010}")
    inspector = inspect(source)
    columns = {
        t: [c["name"] for c in inspector.get_columns(t)] for t in inspector.get_table_names()
    }
    source.dispose()
    return columns


def test_migrations_from_nothing_build_exactly_the_models_on_postgres(pg_url: str) -> None:
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        command.upgrade(store_schema.alembic_config(conn), "head")
    register_all_tables()
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        drift = list(compare_metadata(context, metadata))
    engine.dispose()
    assert drift == [], f"models and migrations differ, add a migration: {drift}"


def test_migrate_upgrades_the_0_1_0_content_on_postgres(pg_url: str) -> None:
    columns = _baseline_columns()
    source = create_engine(f"sqlite:///{STORE_010}")
    expected = _content(source, columns)
    source.dispose()
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        command.upgrade(store_schema.alembic_config(conn), store_schema.BASELINE)
        reflected = MetaData()
        reflected.reflect(conn)
        for table in reflected.sorted_tables:
            rows = expected.get(table.name, [])
            if rows:
                names = columns[table.name]
                conn.execute(table.insert(), [dict(zip(names, r, strict=True)) for r in rows])
        conn.execute(text("DROP TABLE alembic_version"))

    runner = CliRunner()
    refused = runner.invoke(main, ["--state", pg_url, "history"])
    assert refused.exit_code == 1
    assert "has no schema version (made by devskyy 0.1.0)" in refused.output
    done = runner.invoke(main, ["--state", pg_url, "migrate"])
    assert done.exit_code == 0, done.output
    assert done.output.startswith("migrated postgresql+psycopg://")
    assert done.output.endswith(f"from no version (0.1.0) to {store_schema.head()}\n")

    assert _content(engine, columns) == expected
    with engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert version == store_schema.head()
    history = runner.invoke(main, ["--state", pg_url, "history"])
    assert history.exit_code == 0, history.output
    assert [line.split()[0] for line in history.output.splitlines()[1:]] == ["1", "2", "3"]
    verify = runner.invoke(main, ["--state", pg_url, "audit", "--verify"])
    assert verify.exit_code == 0, verify.output
    assert "intact: 6 event(s)" in verify.output


def test_0010_round_trips_a_run_down_and_up_on_postgres(pg_url: str) -> None:
    """Down to 0009 a run created at head gets its pending rows back; up again it reads
    the same."""
    engine = open_engine(pg_url)
    before, rows = downgrade_a_new_run_to_0009(engine)
    assert rows == [("a", 0, "pending"), ("b", 1, "running")]
    with engine.begin() as conn:
        command.upgrade(store_schema.alembic_config(conn), "head")
    assert SqlRunStore(engine).get("new") == before
    engine.dispose()


def test_0011_round_trips_an_ended_step_down_and_up_on_postgres(pg_url: str) -> None:
    """Down to 0010 the end a step row stood for becomes an event row; up again the
    run's log reads the same."""
    engine = open_engine(pg_url)
    before, rows = downgrade_an_ended_step_to_0010(engine)
    assert rows == [("b", "running", 1, 2.0, None), ("a", "succeeded", 1, 4.0, 3.0)]
    with engine.begin() as conn:
        command.upgrade(store_schema.alembic_config(conn), "head")
    assert SqlRunStore(engine).events("ended") == before
    engine.dispose()
