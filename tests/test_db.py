"""Opening the store: tables created, and a store from another version refused clearly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from devskyy.adapters.db import open_engine
from devskyy.adapters.store_schema import head
from devskyy.adapters.store_url import default_state_url, resolve_state_url
from devskyy.errors import StateError


def test_state_url_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_state_url(tmp_path) == f"sqlite:///{tmp_path}/.devskyy/state.db"
    assert resolve_state_url(None, tmp_path) == default_state_url(tmp_path)
    monkeypatch.setenv("DEVSKYY_STATE_URL", "sqlite:////env.db")
    assert resolve_state_url(None, tmp_path) == "sqlite:////env.db"
    assert resolve_state_url("sqlite:////opt.db", tmp_path) == "sqlite:////opt.db"


def test_open_engine_creates_the_folder_and_every_table(tmp_path: Path) -> None:
    url = default_state_url(tmp_path)
    engine = open_engine(url)
    with sqlite3.connect(tmp_path / ".devskyy" / "state.db") as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    engine.dispose()
    assert {"revisions", "resources", "runs", "api_keys", "audit_events"} <= tables


def test_an_unversioned_store_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("create table run_step_events (id integer primary key)")
    with pytest.raises(StateError) as err:
        open_engine(f"sqlite:///{path}")
    assert str(err.value) == (
        f"the state store sqlite:///{path} has no schema version (made by devskyy 0.1.0) "
        f"and this devskyy needs {head()}: run `devskyy migrate` (with the same --state) "
        "to upgrade it"
    )
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master")]
        columns = [r[1] for r in conn.execute("pragma table_info(run_step_events)")]
    assert (tables, columns) == (["run_step_events"], ["id"])  # nothing created or altered
