"""What deleting expired ``rate_windows`` rows costs the shared limiter, per request.

In one run, on PostgreSQL (``tests/pg_server.py``, or ``DEVSKYY_TEST_POSTGRES_URL``) and
on a SQLite file, one load is counted three ways, in interleaved rounds (best of 3 kept):

- ``before``: the upsert as it was before migration 0009 (no ``expires_at``), no sweep:
  the baseline;
- ``no sweep``: today's upsert (it also writes ``expires_at``), sweeps turned off;
- ``sweep``: today's limiter as servers run it, a sweep every 1,000 requests.

The load: 20 principals that keep coming back, and one new principal (a new client
address) every 10th request, at 1 ms of store time apart with a 1 s window, so rows expire
during the run. Printed: p50, p99 and the slowest request in ms, and the rows left in the
table (what the sweep is for). Then one sweep of 5,000 expired rows alone.

    .venv/bin/python benchmarks/bench_rate_sweep.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from pg_server import fresh_database, postgres_server  # noqa: E402
from sqlalchemy import text  # noqa: E402

from devskyy.adapters.db import open_engine  # noqa: E402
from devskyy.adapters.dbapi import raw_transaction  # noqa: E402
from devskyy.adapters.engine import Engine  # noqa: E402
from devskyy.adapters.rate_store import SqlRateWindows  # noqa: E402

MS = 1000  # microseconds
WINDOW = 1_000 * MS

# The statements of migration 0005 (before 0009), for the baseline.
_BEFORE_POSTGRES = """
WITH lazy AS (SELECT set_config('synchronous_commit', 'off', true))
INSERT INTO rate_windows (principal, hits, accepted)
SELECT %(p)s, ARRAY[%(now)s]::bigint[], true FROM lazy
ON CONFLICT (principal) DO UPDATE SET
  hits = (
    SELECT CASE WHEN count(*) < %(limit)s
      THEN coalesce(array_agg(h ORDER BY h), '{}'::bigint[]) || %(now)s::bigint
      ELSE array_agg(h ORDER BY h) END
    FROM unnest(rate_windows.hits) AS h WHERE h > %(now)s - %(window)s),
  accepted = (
    SELECT count(*) < %(limit)s
    FROM unnest(rate_windows.hits) AS h WHERE h > %(now)s - %(window)s)
RETURNING hits, accepted
"""
_BEFORE_SQLITE = """
INSERT INTO rate_windows (principal, hits, accepted)
VALUES (:p, json_array(:now), 1)
ON CONFLICT (principal) DO UPDATE SET
  hits = (
    SELECT CASE WHEN count(*) < :limit
      THEN json_insert(json_group_array(value), '$[#]', :now)
      ELSE json_group_array(value) END
    FROM (SELECT value FROM json_each(rate_windows.hits)
          WHERE value > :now - :window ORDER BY value)),
  accepted = (
    SELECT count(*) < :limit
    FROM json_each(rate_windows.hits) WHERE value > :now - :window)
RETURNING hits, accepted
"""

Hit = Callable[[str, int, int, int], object]


def before(engine: Engine) -> Hit:
    """The pre-0009 upsert, through the pooled DBAPI connection as the limiter does."""
    sqlite = engine.dialect.name == "sqlite"

    def hit(key: str, now: int, limit: int, window: int) -> object:
        # The same work around the statement as ``SqlRateWindows.hit``, the log parsed too.
        with raw_transaction(engine, "BEGIN IMMEDIATE" if sqlite else None) as cursor:
            cursor.execute(
                _BEFORE_SQLITE if sqlite else _BEFORE_POSTGRES,
                {"p": key, "now": now, "limit": limit, "window": window},
            )
            row: Any = cursor.fetchone()
        hits = json.loads(row[0]) if sqlite else row[0]
        return [int(t) for t in hits], bool(row[1])

    return hit


def clear(engine: Engine) -> int:
    with engine.begin() as conn:
        left = int(conn.execute(text("SELECT count(*) FROM rate_windows")).scalar_one())
        conn.execute(text("DELETE FROM rate_windows"))
    return left


def load(hit: Hit, requests: int) -> list[float]:
    times = []
    for i in range(requests):
        key = f"new-{i}" if i % 10 == 0 else f"regular-{i % 20}"
        t0 = time.perf_counter()
        hit(key, i * MS, 100, WINDOW)
        times.append(time.perf_counter() - t0)
    return times


def figures(url: str, requests: int) -> dict[str, tuple[float, float, float, int]]:
    engine = open_engine(url)
    kinds: dict[str, Hit] = {
        "before": before(engine),
        "no sweep": SqlRateWindows(engine, sweep_every=10**12).hit,
        "sweep": SqlRateWindows(engine).hit,
    }
    best: dict[str, tuple[float, float, float, int]] = {}
    try:
        load(kinds["sweep"], 500)  # warm-up: pool, compiled statements
        clear(engine)
        for _ in range(3):
            for name, hit in kinds.items():
                times = sorted(load(hit, requests))
                left = clear(engine)
                got = (
                    times[len(times) // 2] * 1e3,
                    times[int(len(times) * 0.99)] * 1e3,
                    times[-1] * 1e3,
                    left,
                )
                if name not in best or got[0] < best[name][0]:
                    best[name] = got
        windows = SqlRateWindows(engine, sweep_every=10**12)
        for i in range(5000):
            windows.hit(f"old-{i}", 0, 100, WINDOW)
        t0 = time.perf_counter()
        deleted = windows.sweep(10 * WINDOW)
        best["one sweep"] = ((time.perf_counter() - t0) * 1e3, 0.0, 0.0, deleted)
    finally:
        engine.dispose()
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, postgres_server() as pg, fresh_database(pg) as url:
        results = {
            "PostgreSQL": figures(url, args.requests),
            "SQLite": figures(f"sqlite:///{Path(tmp) / 'bench.db'}", args.requests),
        }
    print(f"{args.requests} requests, 20 regular principals, a new one every 10th, best of 3")
    for store, got in results.items():
        base = got["before"][0]
        for name in ("before", "no sweep", "sweep"):
            p50, p99, worst, left = got[name]
            print(
                f"  {store:10} {name:9} p50 {p50:.3f} ms ({p50 / base:.2f}x before), "
                f"p99 {p99:.3f} ms, slowest {worst:.2f} ms, rows left {left}"
            )
        ms, _, _, deleted = got["one sweep"]
        print(f"  {store:10} one sweep deleting {deleted} expired rows: {ms:.1f} ms")


if __name__ == "__main__":
    main()
