"""Verify reads the audit head and rows in one snapshot: a concurrent append is no break.

The store reads the head, then the rows. ``Interleaved`` (a store subclass using the
``_read_audit_head`` seam) commits a write from another engine, hence another
connection, right after the head is read: an append must not make verify report a
break, and a real edit or truncation still must. On SQLite (WAL) and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pg_server import store_url
from sqlalchemy import Connection, Engine, insert, text

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.db import open_engine
from devskyy.adapters.security_store import SqlSecurityStore, append_audit_in
from devskyy.adapters.state_sql import revisions_table
from devskyy.core.audit import GENESIS, Checkpoint, chain
from devskyy.model.security import AuditEvent, AuditRecord, EventType, Outcome
from devskyy.runtime.security.audit import AuditWriter


class Interleaved(SqlSecurityStore):
    """Runs ``between`` once, after a read of the head and before the rows are read."""

    between: Callable[[], object] | None = None

    def _read_audit_head(self, conn: Connection) -> tuple[int, str] | None:
        head = super()._read_audit_head(conn)
        action, self.between = self.between, None
        if action is not None:
            action()
        return head


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def engines(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one store: the verifier's and the other process's."""
    with store_url(request, tmp_path) as url:
        reader, other = open_engine(url), open_engine(url)
        yield reader, other
        reader.dispose()
        other.dispose()


def _events(first: int, n: int) -> list[AuditEvent]:
    return [
        AuditEvent(1000.0 + i, f"actor{i}", EventType.KEY_CREATED, "keys", Outcome.SUCCESS, {})
        for i in range(first, first + n)
    ]


def _append(store: SqlSecurityStore, first: int, n: int) -> list[AuditRecord]:
    """Append ``n`` chained events after the stored head (as another writer would)."""
    seq, last = store.audit_head() or (0, GENESIS)
    records = chain(_events(first, n), seq, last)
    store.append_audit(records, after=seq)
    return records


def _execute(engine: Engine, sql: str) -> Callable[[], None]:
    def run() -> None:
        with engine.begin() as conn:
            assert conn.execute(text(sql)).rowcount == 1

    return run


def test_an_append_between_the_head_and_rows_reads_is_not_a_break(
    engines: tuple[Engine, Engine],
) -> None:
    reader, other = engines
    store, writer = Interleaved(reader), SqlSecurityStore(other)
    first = _append(writer, 0, 2)
    audit = AuditWriter(store, FakeClock())
    store.between = lambda: _append(writer, 2, 3)
    report = audit.verify()  # audit_scan: the dashboard's and `audit --verify`'s path
    assert store.between is None  # the append ran inside this verify
    assert (report.ok, report.checked, report.head_hash, report.problem) == (
        True,
        2,
        first[-1].hash,
        "",
    )
    seq, last = writer.audit_head() or (0, GENESIS)
    assert seq == 5
    report = audit.verify()  # resumes after event 2, sees the append
    assert (report.ok, report.checked, report.head_hash) == (True, 5, last)

    store.between = lambda: _append(writer, 5, 1)
    checkpoint = Checkpoint(5, last, "2026-12-03T13:00:00.000Z")
    report = audit.verify((checkpoint,))  # audit_all: verify against checkpoints
    assert store.between is None
    assert (report.ok, report.checked, report.head_hash) == (True, 5, last)
    assert writer.audit_count() == 6


def test_store_reads_return_a_head_that_matches_the_rows_read(
    engines: tuple[Engine, Engine],
) -> None:
    reader, other = engines
    store, writer = Interleaved(reader), SqlSecurityStore(other)
    first = _append(writer, 0, 1)
    store.between = lambda: _append(writer, 1, 1)
    scan = store.audit_scan(0)
    assert (scan.records, scan.head) == (first, (1, first[-1].hash))
    store.between = lambda: _append(writer, 2, 1)
    records, head = store.audit_all()
    assert len(records) == 2
    assert head == (2, records[-1].hash)
    assert writer.audit_count() == 3


def test_an_edit_or_truncation_is_still_a_break(engines: tuple[Engine, Engine]) -> None:
    reader, other = engines
    store, writer = Interleaved(reader), SqlSecurityStore(other)
    _append(writer, 0, 4)
    audit = AuditWriter(store, FakeClock())
    assert audit.verify().ok
    # Edited after this verify read the head: this one read before the edit, the next sees it.
    store.between = _execute(other, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
    assert audit.verify().ok
    report = audit.verify()
    assert (report.ok, report.first_bad, report.problem) == (
        False,
        2,
        "event 2 (key.created by mallory at 1970-01-01T00:16:41.000000+00:00) was altered",
    )
    _execute(other, "UPDATE audit_events SET actor = 'actor1' WHERE seq = 2")()
    assert audit.verify().ok
    store.between = _execute(other, "DELETE FROM audit_events WHERE seq = 4")
    assert audit.verify().ok
    report = audit.verify()
    assert (report.ok, report.checked, report.problem) == (
        False,
        3,
        "event 4 was deleted (end of the log)",
    )
    report = AuditWriter(store, FakeClock()).verify((Checkpoint(4, "0" * 64, "then"),))
    assert (report.ok, report.problem) == (False, "event 4 was deleted (end of the log)")


def _apply(engine: Engine, number: int) -> None:
    """A revision and its manifests.applied event, committed together as an apply does."""
    at = datetime(2026, 12, 3, 13, number, tzinfo=UTC)
    event = AuditEvent(
        at.timestamp(),
        "cli",
        EventType.MANIFESTS_APPLIED,
        "manifests",
        Outcome.SUCCESS,
        {"revision": number, "source": "x"},
    )
    with engine.begin() as conn:
        row = {"number": number, "created_at": at, "source": "x", "summary": "{}"}
        conn.execute(insert(revisions_table).values(**row, snapshot="{}"))
        append_audit_in(conn, lambda head: chain([event], *(head or (0, GENESIS))))


@pytest.mark.parametrize("checkpoints", [False, True], ids=["scan", "all"])
def test_an_apply_during_verify_is_not_a_revision_without_its_event(
    engines: tuple[Engine, Engine], checkpoints: bool
) -> None:
    reader, other = engines
    store, writer = Interleaved(reader), SqlSecurityStore(other)
    _apply(other, 1)
    audit = AuditWriter(store, FakeClock())
    seq, last = writer.audit_head() or (0, GENESIS)
    given = (Checkpoint(seq, last, "then"),) if checkpoints else ()
    store.between = lambda: _apply(other, 2)
    report = audit.verify(given)
    assert store.between is None
    assert (report.ok, report.checked, report.problem) == (True, 1, "")
    report = audit.verify(given)
    assert (report.ok, report.checked, report.problem) == (True, 2, "")
    # A revision whose event is really missing is still found.
    with other.begin() as conn:
        at = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
        row = {"number": 3, "created_at": at, "source": "x", "summary": "{}"}
        conn.execute(insert(revisions_table).values(**row, snapshot="{}"))
    report = audit.verify(given)
    assert (report.ok, report.problem) == (
        False,
        "revision(s) 3 have no manifests.applied event in the audit log",
    )
