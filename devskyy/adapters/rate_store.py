"""Shared rate-limit logs: one row per principal, pruned and counted in one upsert.

Every server sharing a store counts a principal's requests in the same row of
``rate_windows``: the times (whole microseconds) of its accepted requests still inside
the window, and whether the latest request was accepted. One statement per request does
it all, ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``: drop the times that left the
window, append ``now`` when fewer than ``limit`` remain, return the log. The row lock of
the upsert serialises concurrent requests of one principal (PostgreSQL re-evaluates the
``SET`` on the latest row version), so the limit is exact across any number of servers;
requests of different principals never wait for each other.

PostgreSQL keeps the log in a ``bigint[]``; SQLite in JSON text (integers are exact in
JSON) inside ``BEGIN IMMEDIATE``, so several processes on one machine share it too. The
arithmetic of the decision stays in ``devskyy.core.ratelimit`` (``decide``); this module
only stores. Both statements go through the pooled DBAPI connection: this runs on every
request.

Rows go once they can no longer count: every upsert also writes ``expires_at``, its
``now`` plus two windows (the window its newest time can fill, then one more of slack for
servers whose clocks differ), and every ``sweep_every``-th request a server counts runs a
separate short transaction that deletes the rows past it (``sweep``). A principal's next
request after that finds no row and starts a new log, which is what the upsert would have
made of the old one (all its times had left the window). So the table holds the
principals seen in the last two windows, not every client address ever seen. The sweep
never waits for a row another request is counting (PostgreSQL: ``SKIP LOCKED``), and on
PostgreSQL it does not wait for its WAL flush either: a delete lost to a database crash
is only done again.
"""

from __future__ import annotations

import itertools
import json
import logging
from typing import Any, Protocol

from sqlalchemy import ARRAY, BigInteger, Boolean, Column, Engine, String, Table, Text

from devskyy.adapters.db import metadata
from devskyy.adapters.dbapi import raw_transaction

log = logging.getLogger("devskyy.security")

rate_windows = Table(
    "rate_windows",
    metadata,
    Column("principal", String(255), primary_key=True),
    # JSON text of integers on SQLite; a bigint[] on PostgreSQL (its array functions).
    # The generic ARRAY (the same DDL there): importing the PostgreSQL dialect for it
    # cost every command ~20 ms, SQLite ones included.
    Column("hits", Text().with_variant(ARRAY(BigInteger()), "postgresql"), nullable=False),
    Column("accepted", Boolean, nullable=False),
    # Whole microseconds; after it the row can be deleted (see above). NULL only in rows
    # that an older devskyy still running during an upgrade inserted: never swept.
    Column("expires_at", BigInteger, nullable=True),
)

SWEEP_EVERY = 1000
"""Requests a server counts between two sweeps of expired rows."""
SWEEP_BATCH = 5000
"""Rows one sweep deletes at most (more than a server can add between two sweeps)."""

# ``lazy`` turns off the wait for the WAL flush for this transaction only (SET LOCAL, in
# the same statement): the count is visible to every server at commit all the same, and
# a PostgreSQL crash can lose only the last fraction of a second of counts. Waiting for
# the disk cost 3-5 ms a request against 0.2 ms (benchmarks/bench_cluster.py).
_POSTGRES = """
WITH lazy AS (SELECT set_config('synchronous_commit', 'off', true))
INSERT INTO rate_windows (principal, hits, accepted, expires_at)
SELECT %(p)s, ARRAY[%(now)s]::bigint[], true, %(expires)s FROM lazy
ON CONFLICT (principal) DO UPDATE SET
  expires_at = excluded.expires_at,
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

# The same statement in SQLite's words: json_each for unnest, json_group_array for
# array_agg (fed in order by the inner query), json_insert '$[#]' for appending.
_SQLITE = """
INSERT INTO rate_windows (principal, hits, accepted, expires_at)
VALUES (:p, json_array(:now), 1, :expires)
ON CONFLICT (principal) DO UPDATE SET
  expires_at = excluded.expires_at,
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

# Expired rows, a batch at a time. PostgreSQL skips rows locked by a request being
# counted (their expiry is moving anyway) instead of waiting for them.
_SWEEP_POSTGRES = """
DELETE FROM rate_windows WHERE principal IN (
  SELECT principal FROM rate_windows WHERE expires_at < %(now)s
  LIMIT %(batch)s FOR UPDATE SKIP LOCKED)
"""
_SWEEP_SQLITE = """
DELETE FROM rate_windows WHERE principal IN (
  SELECT principal FROM rate_windows WHERE expires_at < :now LIMIT :batch)
"""


def expires_at(now: int, window: int) -> int:
    """When a row last written at ``now`` may go: its window, then one more of slack."""
    return now + 2 * window


class RateWindows(Protocol):
    """Where the per-principal logs live (times in whole microseconds)."""

    def hit(self, key: str, now: int, limit: int, window: int) -> tuple[list[int], bool]:
        """Count a request at ``now`` if the window admits it: the log after, and whether."""
        ...


class SqlRateWindows:
    """The logs in the shared store: one round trip per request."""

    def __init__(
        self, engine: Engine, *, sweep_every: int = SWEEP_EVERY, sweep_batch: int = SWEEP_BATCH
    ) -> None:
        self.engine = engine
        self.sweep_every = sweep_every
        self.sweep_batch = sweep_batch
        # next() on a count is atomic: request threads share it without a lock.
        self._counted = itertools.count(1)
        self._sqlite = engine.dialect.name == "sqlite"
        if not self._sqlite and engine.dialect.name != "postgresql":
            raise ValueError(
                f"shared rate limits need SQLite or PostgreSQL, not {engine.dialect.name}"
            )

    def hit(self, key: str, now: int, limit: int, window: int) -> tuple[list[int], bool]:
        params = {
            "p": key,
            "now": now,
            "limit": limit,
            "window": window,
            "expires": expires_at(now, window),
        }
        # SQLite: the write lock first, as a read that later upgrades could fail as busy.
        with raw_transaction(self.engine, "BEGIN IMMEDIATE" if self._sqlite else None) as cursor:
            cursor.execute(_SQLITE if self._sqlite else _POSTGRES, params)
            row: Any = cursor.fetchone()
        if next(self._counted) % self.sweep_every == 0:
            try:
                self.sweep(now)
            except Exception as exc:  # the request was counted; the next sweep tries again
                log.warning("rate window sweep failed: %s", type(exc).__name__)
        hits = json.loads(row[0]) if self._sqlite else row[0]
        return [int(t) for t in hits], bool(row[1])

    def sweep(self, now: int) -> int:
        """Delete up to ``sweep_batch`` rows expired at ``now`` (microseconds); how many."""
        params = {"now": now, "batch": self.sweep_batch}
        with raw_transaction(self.engine, "BEGIN IMMEDIATE" if self._sqlite else None) as cursor:
            if self._sqlite:
                cursor.execute(_SWEEP_SQLITE, params)
            else:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
                cursor.execute(_SWEEP_POSTGRES, params)
            return int(cursor.rowcount)
