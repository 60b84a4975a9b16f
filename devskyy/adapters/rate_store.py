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
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from sqlalchemy import ARRAY, BigInteger, Boolean, Column, Engine, String, Table, Text

from devskyy.adapters.db import metadata

rate_windows = Table(
    "rate_windows",
    metadata,
    Column("principal", String(255), primary_key=True),
    # JSON text of integers on SQLite; a bigint[] on PostgreSQL (its array functions).
    # The generic ARRAY (the same DDL there): importing the PostgreSQL dialect for it
    # cost every command ~20 ms, SQLite ones included.
    Column("hits", Text().with_variant(ARRAY(BigInteger()), "postgresql"), nullable=False),
    Column("accepted", Boolean, nullable=False),
)

# ``lazy`` turns off the wait for the WAL flush for this transaction only (SET LOCAL, in
# the same statement): the count is visible to every server at commit all the same, and
# a PostgreSQL crash can lose only the last fraction of a second of counts. Waiting for
# the disk cost 3-5 ms a request against 0.2 ms (benchmarks/bench_cluster.py).
_POSTGRES = """
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

# The same statement in SQLite's words: json_each for unnest, json_group_array for
# array_agg (fed in order by the inner query), json_insert '$[#]' for appending.
_SQLITE = """
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


class RateWindows(Protocol):
    """Where the per-principal logs live (times in whole microseconds)."""

    def hit(self, key: str, now: int, limit: int, window: int) -> tuple[list[int], bool]:
        """Count a request at ``now`` if the window admits it: the log after, and whether."""
        ...


class SqlRateWindows:
    """The logs in the shared store: one round trip per request."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        if not self._sqlite and engine.dialect.name != "postgresql":
            raise ValueError(
                f"shared rate limits need SQLite or PostgreSQL, not {engine.dialect.name}"
            )

    def hit(self, key: str, now: int, limit: int, window: int) -> tuple[list[int], bool]:
        params = {"p": key, "now": now, "limit": limit, "window": window}
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            if self._sqlite:
                # The write lock first: a read that later upgrades could fail as busy.
                cursor.execute("BEGIN IMMEDIATE")
                cursor.execute(_SQLITE, params)
            else:
                cursor.execute(_POSTGRES, params)
            row: Any = cursor.fetchone()
            cursor.close()
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()
        hits = json.loads(row[0]) if self._sqlite else row[0]
        return [int(t) for t in hits], bool(row[1])
