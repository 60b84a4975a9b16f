"""Shared rate limits (issue 15.1): one log per principal in the store, exact across servers.

Two ``SecurityManager``s on one store stand for two servers (each with its own engine,
pool and in-process state); real processes on one SQLite file and threads on a real
PostgreSQL check that concurrent upserts never let the 101st request through.
"""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pg_server import fresh_database
from security_helpers import shipped_roles

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.db import open_engine
from devskyy.adapters.engine import Engine
from devskyy.adapters.rate_store import SqlRateWindows
from devskyy.core.ratelimit import RateDecision, SlidingWindowLog, decide, slide, to_micros
from devskyy.runtime.security import SecurityManager

_ENGINES: list[Engine] = []


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    yield
    while _ENGINES:
        _ENGINES.pop().dispose()


def _engine(url: str) -> Engine:
    engine = open_engine(url)
    _ENGINES.append(engine)
    return engine


def _server(url: str, clock: FakeClock) -> SecurityManager:
    """A server's security manager: its own engine (pool) on the shared store."""
    roles = shipped_roles()
    return SecurityManager(_engine(url), clock, lambda: roles)


def test_slide_and_decide_agree_with_the_in_process_log() -> None:
    rng = random.Random(15)
    log = SlidingWindowLog()
    shared: tuple[int, ...] = ()
    now = 0.0
    for _ in range(3000):
        now += rng.choice([0.0, 0.001, 0.25, 1.0, 7.0])
        limit, window = rng.choice([(5, 10.0), (5, 12.0), (3, 10.0)])
        expected = log.hit("a", now, limit, window)
        shared, accepted = slide(shared, to_micros(now), limit, to_micros(window))
        got = decide(shared, accepted, to_micros(now), limit, to_micros(window))
        assert got.allowed == expected.allowed
        assert got.remaining == expected.remaining
        assert got.retry_after == pytest.approx(expected.retry_after, abs=1e-6)
        assert got.reset_after == pytest.approx(expected.reset_after, abs=1e-6)


def _spread_over_two(first: SecurityManager, second: SecurityManager, clock: FakeClock) -> None:
    """100 requests alternating between two servers pass; the 101st is refused on both."""
    for i in range(100):
        server = first if i % 2 == 0 else second
        decision = server.rate_limit("my_agent")
        assert decision.allowed, i
        assert decision.remaining == 99 - i
        clock.advance(0.25)
    # 25 s after the first request: it leaves the window at 60 s, 35 s from now.
    expected = RateDecision(False, 100, 60.0, 0, 35.0, 59.75 + 0.0)
    refused = [first.rate_limit("my_agent"), second.rate_limit("my_agent")]
    assert refused == [expected, expected]
    clock.advance(35.0 - 0.001)
    assert not second.rate_limit("my_agent").allowed
    clock.advance(0.001)
    assert first.rate_limit("my_agent").allowed  # the first request left the window
    assert not second.rate_limit("my_agent").allowed
    assert second.rate_limit("other").remaining == 99  # principals are independent


def test_two_servers_on_one_sqlite_file_share_one_limit(tmp_path: Path, clock: FakeClock) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    first, second = _server(url, clock), _server(url, clock)
    _spread_over_two(first, second, clock)


def test_an_in_process_limit_stays_per_server_when_asked(tmp_path: Path, clock: FakeClock) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    roles = shipped_roles()
    servers = [
        SecurityManager(_engine(url), clock, lambda: roles, shared_limits=False) for _ in range(2)
    ]
    assert all(s.rate_limit("a").allowed for s in servers for _ in range(100))
    assert servers[0].limits.windows is None
    assert not servers[0].rate_limit("a").allowed


_WORKER = """
import sys
from devskyy.adapters.db import open_engine
from devskyy.adapters.rate_store import SqlRateWindows
windows = SqlRateWindows(open_engine(sys.argv[1]))
accepted = 0
for i in range(int(sys.argv[2])):
    # The same instant for every process: only the count decides.
    _log, ok = windows.hit("p", 10_000_000, 100, 60_000_000)
    accepted += ok
print(accepted)
"""


def test_processes_on_one_sqlite_file_admit_exactly_the_limit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    _engine(url)  # created at head before the race
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, url, "60"], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    counts = [int(w.communicate(timeout=120)[0]) for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0, 0]
    assert sum(counts) == 100
    log, accepted = SqlRateWindows(_engine(url)).hit("p", 10_000_000, 100, 60_000_000)
    assert (len(log), accepted) == (100, False)


@pytest.fixture
def pg_url(server_url: str) -> Iterator[str]:
    with fresh_database(server_url) as url:
        yield url
        while _ENGINES:  # before the database is dropped under them
            _ENGINES.pop().dispose()


@pytest.mark.slow
def test_two_servers_on_postgresql_share_one_limit(pg_url: str, clock: FakeClock) -> None:
    first, second = _server(pg_url, clock), _server(pg_url, clock)
    _spread_over_two(first, second, clock)


@pytest.mark.slow
def test_concurrent_requests_on_postgresql_admit_exactly_the_limit(pg_url: str) -> None:
    windows = [SqlRateWindows(_engine(pg_url)) for _ in range(3)]

    def burst(n: int) -> int:
        return sum(windows[n % 3].hit("p", 5_000_000, 100, 60_000_000)[1] for _ in range(40))

    with ThreadPoolExecutor(9) as pool:
        assert sum(pool.map(burst, range(9))) == 100
    log, accepted = windows[0].hit("p", 5_000_000 + 60_000_000, 100, 60_000_000)
    assert (log, accepted) == ([65_000_000], True)  # the whole burst left the window
