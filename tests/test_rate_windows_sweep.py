"""Expired rows of the shared rate limiter go (``adapters/rate_store.py``, migration 0009).

Every principal that ever made a request (every client address of the webhook) used to
keep its ``rate_windows`` row forever. Now each upsert writes when its row may go (its
``now`` plus two windows) and every ``sweep_every``-th request a server counts deletes
the rows past it. Checked on a real SQLite file and a real PostgreSQL: which rows go and
which stay (to the microsecond), that a sweep never changes a decision (100 requests over
two servers pass, the 101st is 429 on both, across sweeps), and that rows written before
0009 get an expiry when the store is migrated. Time is the fake clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from api_fixtures import apply_tree, make_workspace, write_tree
from fastapi.testclient import TestClient
from pg_server import store_url
from sqlalchemy import text

from devskyy.adapters import store_schema
from devskyy.adapters.clock import FakeClock
from devskyy.adapters.db import open_engine
from devskyy.adapters.engine import Engine
from devskyy.adapters.rate_store import SqlRateWindows
from devskyy.api import ApiSettings, create_app
from devskyy.core.ratelimit import to_micros
from devskyy.runtime.security import SecurityManager
from devskyy.runtime.system import System, open_system

S = 1_000_000  # a second in microseconds
MINUTE = 60 * S
HEALTH = "/api/agents/orchestrator/health"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store_url(request, tmp_path) as fresh:
        yield fresh


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    engine = open_engine(url)
    yield engine
    engine.dispose()


def _rows(engine: Engine) -> dict[str, int | None]:
    """Each principal's row and its expiry."""
    with engine.connect() as conn:
        found = conn.execute(text("SELECT principal, expires_at FROM rate_windows"))
        return {str(row[0]): row[1] for row in found}


def test_a_sweep_deletes_exactly_the_rows_two_windows_past_their_last_request(
    engine: Engine,
) -> None:
    windows = SqlRateWindows(engine)
    t0 = 1_000 * S
    windows.hit("minute", t0, 5, MINUTE)
    windows.hit("hour", t0, 5, 60 * MINUTE)
    for i in range(3):  # a flood that was refused: the row lives on its last request
        windows.hit("flood", t0 + i * S, 2, MINUTE)
    assert _rows(engine) == {
        "minute": t0 + 2 * MINUTE,
        "hour": t0 + 120 * MINUTE,
        "flood": t0 + 2 * S + 2 * MINUTE,
    }
    assert windows.sweep(t0 + 2 * MINUTE) == 0  # at its expiry a row still stays
    assert windows.sweep(t0 + 2 * MINUTE + 1) == 1
    assert set(_rows(engine)) == {"hour", "flood"}
    assert windows.sweep(t0 + 2 * S + 2 * MINUTE + 1) == 1
    assert set(_rows(engine)) == {"hour"}
    assert windows.sweep(t0 + 120 * MINUTE + 1) == 1
    assert _rows(engine) == {}
    # A principal whose row went starts a new log: what its old one would have become.
    assert windows.hit("minute", t0 + 200 * MINUTE, 5, MINUTE) == ([t0 + 200 * MINUTE], True)


def test_a_sweep_deletes_at_most_a_batch(engine: Engine) -> None:
    windows = SqlRateWindows(engine, sweep_batch=3)
    for i in range(7):
        windows.hit(f"webhook:10.0.0.{i}", 10 * S, 1, MINUTE)
    later = 10 * S + 2 * MINUTE + 1
    assert [windows.sweep(later), windows.sweep(later), windows.sweep(later)] == [3, 3, 1]
    assert _rows(engine) == {}


def test_every_nth_request_sweeps_and_the_limit_holds_across_sweeps(engine: Engine) -> None:
    """100 requests pass and the 101st is refused while sweeps run among them: a row that
    can still count is never deleted, and the expired ones go on their own."""
    windows = SqlRateWindows(engine, sweep_every=7)
    for i in range(20):  # client addresses seen once, long ago
        windows.hit(f"webhook:10.0.0.{i}", 0, 100, MINUTE)
    now = 3 * MINUTE  # past their expiry (two minutes): they may go
    assert len(_rows(engine)) == 20
    for i in range(100):
        log, accepted = windows.hit("alice", now + i * 1000, 100, MINUTE)
        assert accepted, i
        assert len(log) == i + 1
    # This server swept at every 7th of its 120 requests: the old rows are gone.
    assert set(_rows(engine)) == {"alice"}
    for i in range(30):  # refused requests: sweeps run among them too
        log, accepted = windows.hit("alice", now + 100_000 + i, 100, MINUTE)
        assert (len(log), accepted) == (100, False)
    # The first request leaves the window one minute after it was made.
    assert windows.hit("alice", now + MINUTE - 1, 100, MINUTE)[1] is False
    assert windows.hit("alice", now + MINUTE, 100, MINUTE)[1] is True


_REFUSE_DELETES = {
    "sqlite": [
        "CREATE TRIGGER keep_rows BEFORE DELETE ON rate_windows "
        "BEGIN SELECT RAISE(ABORT, 'rows are kept'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION keep_rows() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'rows are kept'; END $$",
        "CREATE TRIGGER keep_rows BEFORE DELETE ON rate_windows "
        "FOR EACH ROW EXECUTE FUNCTION keep_rows()",
    ],
}


def test_a_failed_sweep_leaves_the_request_counted(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    windows = SqlRateWindows(engine, sweep_every=2)
    windows.hit("old", 0, 2, MINUTE)
    with engine.begin() as conn:  # the database refuses every delete
        for statement in _REFUSE_DELETES[engine.dialect.name]:
            conn.execute(text(statement))
    with caplog.at_level("WARNING", logger="devskyy.security"):
        log, accepted = windows.hit("alice", 10 * MINUTE, 2, MINUTE)
    assert (log, accepted) == ([10 * MINUTE], True)
    error = "IntegrityError" if engine.dialect.name == "sqlite" else "RaiseException"
    assert [r.getMessage() for r in caplog.records] == [f"rate window sweep failed: {error}"]
    assert set(_rows(engine)) == {"old", "alice"}
    assert windows.hit("alice", 10 * MINUTE + 1, 2, MINUTE) == (
        [10 * MINUTE, 10 * MINUTE + 1],
        True,
    )


# -- over HTTP: two servers on one store -------------------------------------------------


class Server:
    """``devskyy serve`` as a test sees it: a System on the shared store, its app, a client."""

    def __init__(self, url: str, clock: FakeClock, workspace: Path) -> None:
        self.system: System = asyncio.run(open_system(url, clock=clock))
        settings = ApiSettings(workspace_roots=(workspace,), rate_limit=100, block_sources=False)
        self.client = TestClient(create_app(self.system, settings), raise_server_exceptions=False)
        self.client.__enter__()
        security = self.system.security
        assert isinstance(security, SecurityManager)
        self.security = security
        # The server's own limiter, sweeping every 9 requests instead of every 1000.
        windows = security.limits.windows
        assert isinstance(windows, SqlRateWindows)
        security.limits.windows = SqlRateWindows(windows.engine, sweep_every=9)

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.security.close()
        asyncio.run(self.system.close())


@pytest.fixture
def two_servers(
    url: str, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[Server]]:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    workspace = make_workspace(tmp_path)
    apply_tree(url, write_tree(tmp_path, workspace, code=False))
    servers: list[Server] = []
    try:
        servers += [Server(url, clock, workspace), Server(url, clock, workspace)]
        yield servers
    finally:
        for server in servers:
            server.close()


def test_100_pass_and_the_101st_is_429_on_both_servers_across_sweeps(
    two_servers: list[Server], clock: FakeClock, engine: Engine
) -> None:
    first, second = two_servers
    key = first.security.generate_api_key("u-alice", "guest").key
    headers = {"X-API-Key": key}
    # Principals seen once, three minutes ago: their rows have expired.
    stale = SqlRateWindows(engine)
    for i in range(12):
        stale.hit(f"webhook:10.0.1.{i}", to_micros(clock.now()), 100, MINUTE)
    clock.advance(180.0)
    before = _rows(engine)
    assert len(before) == 12
    codes = []
    for i in range(100):
        codes.append((first if i % 2 == 0 else second).client.get(HEALTH, headers=headers))
        clock.advance(0.25)
    assert [r.status_code for r in codes] == [200] * 100
    assert [r.headers["ratelimit-remaining"] for r in codes[-2:]] == ["1", "0"]
    # Each server swept five times (every 9th of its 50 requests): the old rows are gone.
    assert list(_rows(engine)) == ["u-alice"]
    refused = [
        first.client.get(HEALTH, headers=headers),
        second.client.get(HEALTH, headers=headers),
    ]
    assert [r.status_code for r in refused] == [429, 429]
    assert [r.headers["retry-after"] for r in refused] == ["35", "35"]
    for _ in range(16):  # the second server sweeps twice more among them
        assert second.client.get(HEALTH, headers=headers).status_code == 429
    clock.advance(35.0)  # the first request leaves the window
    assert first.client.get(HEALTH, headers=headers).status_code == 200
    assert second.client.get(HEALTH, headers=headers).status_code == 429


# -- rows written before migration 0009 --------------------------------------------------


def test_migrating_to_0009_gives_old_rows_their_newest_time_plus_two_days(url: str) -> None:
    engine = open_engine(url)
    try:
        with engine.begin() as conn:  # a store last written by devskyy at 0008
            command.downgrade(store_schema.alembic_config(conn), "0008")
        hits = "ARRAY[5, 9]::bigint[]" if url.startswith("postgresql") else "'[5, 9]'"
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO rate_windows (principal, hits, accepted) "
                    f"VALUES ('old', {hits}, true)"
                )
            )
        with engine.begin() as conn:
            command.upgrade(store_schema.alembic_config(conn), "head")
        assert _rows(engine) == {"old": 9 + 2 * 86_400 * S}
        windows = SqlRateWindows(engine)
        assert windows.sweep(9 + 2 * 86_400 * S) == 0
        assert windows.sweep(9 + 2 * 86_400 * S + 1) == 1
    finally:
        engine.dispose()
