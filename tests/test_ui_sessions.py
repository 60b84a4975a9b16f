"""The dashboard's session stores: one contract over SQL (SQLite) and memory; CSRF tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from devskyy.adapters.db import open_engine
from devskyy.adapters.ui_sessions import (
    MemoryUiSessions,
    SqlUiSessions,
    UiSession,
    UiSessionStore,
    csrf_matches,
    csrf_token,
    new_session_id,
    session_hash,
    ui_sessions_table,
)

NOW = 1_700_000_000.0


@pytest.fixture(params=["sql", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UiSessionStore]:
    if request.param == "memory":
        yield MemoryUiSessions()
        return
    engine = open_engine(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        yield SqlUiSessions(engine)
    finally:
        engine.dispose()


def session(expires: float = NOW + 60) -> UiSession:
    return UiSession("0123456789ab", "ops", "operator", NOW, expires)


def test_a_session_is_found_by_its_id_until_it_expires(store: UiSessionStore) -> None:
    sid = new_session_id()
    store.create(sid, session())
    assert store.get(sid, NOW) == session()
    assert store.get(sid, NOW + 59.9) == session()
    assert store.get(sid, NOW + 60) is None  # expiry is exclusive
    assert store.get(sid, NOW) is None  # and an expired session is deleted on sight


def test_unknown_ids_find_nothing_and_delete_says_so(store: UiSessionStore) -> None:
    sid = new_session_id()
    store.create(sid, session())
    assert store.get(sid + "x", NOW) is None
    assert store.get("", NOW) is None
    assert store.delete(sid) is True
    assert store.delete(sid) is False
    assert store.get(sid, NOW) is None


def test_purge_deletes_only_expired_sessions(store: UiSessionStore) -> None:
    old, live = new_session_id(), new_session_id()
    store.create(old, session(NOW + 10))
    store.create(live, session(NOW + 100))
    assert store.purge(NOW + 50) == 1
    assert store.get(old, NOW) is None
    assert store.get(live, NOW) is not None


def test_the_sql_store_keeps_only_the_hash_of_the_id(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        sid = new_session_id()
        SqlUiSessions(engine).create(sid, session())
        with engine.connect() as conn:
            rows = conn.execute(select(ui_sessions_table)).all()
        assert [r.id_hash for r in rows] == [session_hash(sid)]
        assert sid not in repr(rows)
    finally:
        engine.dispose()


def test_session_ids_are_long_and_fresh() -> None:
    ids = {new_session_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 43 for i in ids)  # 32 random bytes, URL-safe base64


def test_csrf_tokens_belong_to_one_session() -> None:
    a, b = new_session_id(), new_session_id()
    assert csrf_token(a) == csrf_token(a)
    assert csrf_token(a) != csrf_token(b)
    assert len(csrf_token(a)) == 64
    assert csrf_matches(a, csrf_token(a))
    assert not csrf_matches(a, csrf_token(b))
    assert not csrf_matches(a, "")
    assert csrf_token(a) not in (a, session_hash(a))  # neither the id nor what is stored
