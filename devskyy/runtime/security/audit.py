"""The audit log writer: chains events and appends them to the security store.

Three paces, so that a request's security checks cost microseconds, not a commit:

- *urgent* events (keys created, rotated, revoked; grants; blocks; manifests applied)
  are written at once;
- *buffered* events (permission denied) are written in one transaction when ``batch``
  are waiting or the oldest has waited ``max_delay`` seconds (checked on the next
  event);
- *rolled-up* events (a key validated, a permission allowed, and failed sign-ins per
  source and reason) are counted per (actor, type, resource, outcome, details) and
  written as one event per ``rollup_seconds`` window (60 s), whose details carry
  ``count`` and ``last`` (the time of the last one) when more than one happened. Every
  one is recorded, as a count, and a flood adds a bounded number of rows.

``checkpoint()`` gives the head as ``{seq, hash, at}`` to keep outside the database;
``verify(checkpoints)`` also checks those, and that every revision of the store has
its ``manifests.applied`` event.

``verify()`` without checkpoints (the dashboard's audit page, on every load) resumes
from the last chain it found intact in this process, kept in memory as ``Verified``:
the count and last hash it reached, the digest of the stored rows it walked, and the
revisions their events name. The store still reads every row (an edited old row can
only be seen by reading it), but only the rows after that mark are parsed and
re-hashed; if the rows up to the mark are no longer exactly the ones walked (an event
edited, deleted, renumbered, the log truncated), the digest differs and the whole chain
is walked again, so the report is always the one a full walk gives.

Everything waiting is written before any read or verification and on
``flush()``/``close()``; a crash may lose the events of the last window. Within one
write, events are ordered by time.

Appends are optimistic: the writer remembers the head (count, last hash) it wrote; if
another process appended meanwhile, the store refuses with ``AuditConflict`` and the
writer re-reads the head and re-chains its events.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from typing import Any

from devskyy.adapters.clock import Clock
from devskyy.adapters.security_store import AuditConflict, SecurityStore
from devskyy.core.audit import (
    GENESIS,
    ChainReport,
    Checkpoint,
    audited_revisions,
    chain,
    check_checkpoint,
    iso,
    revisions_problem,
    verify,
)
from devskyy.errors import StateError
from devskyy.model.security import AuditEvent, AuditRecord, EventType, Outcome

log = logging.getLogger("devskyy.security.audit")

MAX_RETRIES = 20


@dataclass(frozen=True)
class Verified:
    """How far this process found the stored chain intact (see the module docstring)."""

    seq: int
    hash: str
    digest: str
    revisions: frozenset[int]


class AuditWriter:
    """Buffers, chains and appends audit events."""

    def __init__(
        self,
        store: SecurityStore,
        clock: Clock,
        *,
        batch: int = 500,
        max_delay: float = 1.0,
        rollup_seconds: float = 60.0,
        rollup_cap: int = 50_000,
    ) -> None:
        self._store = store
        self._clock = clock
        self._batch = batch
        self._max_delay = max_delay
        self._rollup_seconds = rollup_seconds
        self._rollup_cap = rollup_cap
        self._order = 0  # ties in time keep the order events came in
        self._buffer: list[tuple[int, AuditEvent]] = []
        self._first_at = 0.0
        # (actor, type, resource, *details items) -> [order, first time, count, last time]:
        # plain values only, so that a full window of roll-ups adds few objects for the
        # garbage collector to trace (the event is built when the window is written).
        self._rollups: dict[tuple[Any, ...], list[Any]] = {}
        self._rollup_at = 0.0
        self._head: tuple[int, str] | None = None
        self._verified: Verified | None = None
        self._lock = threading.RLock()
        self.on_flush: list[Any] = []

    def record(self, event: AuditEvent, *, urgent: bool = True) -> None:
        """Queue ``event``; write now when urgent or when something waiting is due."""
        with self._lock:
            self._order += 1
            if not self._buffer:
                self._first_at = self._clock.monotonic()
            self._buffer.append((self._order, event))
        self._maybe_flush(urgent)

    def count(
        self,
        time: float,
        actor: str,
        event_type: EventType,
        resource: str,
        details: dict[str, Any],
        *,
        outcome: Outcome = Outcome.SUCCESS,
    ) -> None:
        """Count one event (a success, or a failure of a flood) into this window's roll-up."""
        key = (actor, event_type, resource, outcome, *details.items())
        with self._lock:
            entry = self._rollups.get(key)
            if entry is None:
                self._order += 1
                if not self._rollups:
                    self._rollup_at = self._clock.monotonic()
                self._rollups[key] = [self._order, time, 1, time]
            else:
                entry[2] += 1
                entry[3] = time
        self._maybe_flush(False)

    def _maybe_flush(self, urgent: bool) -> None:
        # Read without the lock: the answer only decides whether to write now, and
        # ``_write`` takes the lock for what it drains.
        now = self._clock.monotonic()
        rollups = self._rollups
        if rollups and (
            len(rollups) >= self._rollup_cap or now - self._rollup_at >= self._rollup_seconds
        ):
            # A roll-up window is written only when it ends (or on an explicit flush), so
            # a burst of denials does not cut short the counting of successes.
            self.flush()
            return
        buffer = self._buffer
        if urgent or (
            buffer and (len(buffer) >= self._batch or now - self._first_at >= self._max_delay)
        ):
            self._write(rollups=False)

    def _drain(self, *, rollups: bool) -> list[AuditEvent]:
        events = self._buffer
        self._buffer = []
        if rollups:
            for key, (order, first, count, last) in self._rollups.items():
                actor, event_type, resource, outcome = key[:4]
                details = dict(key[4:])
                if count > 1:
                    details["count"] = count
                    details["last"] = iso(last)
                event = AuditEvent(first, actor, event_type, resource, outcome, details)
                events.append((order, event))
            self._rollups = {}
        events.sort(key=lambda item: (item[1].time, item[0]))
        return [e for _, e in events]

    def pending(self) -> int:
        """How many events wait (buffered plus rolled up)."""
        return len(self._buffer) + len(self._rollups)

    def flush(self) -> None:
        """Write every waiting event, roll-ups included."""
        self._write(rollups=True)

    def _write(self, *, rollups: bool) -> None:
        """Write waiting events (retrying when another writer got in first)."""
        with self._lock:
            events = self._drain(rollups=rollups)
            for hook in self.on_flush:
                hook()
            if not events:
                return
            for _ in range(MAX_RETRIES):
                head = self._head or self._store.audit_head() or (0, GENESIS)
                records = chain(events, head[0], head[1])
                try:
                    self._store.append_audit(records, after=head[0])
                except AuditConflict:
                    self._head = None
                    continue
                self._head = (records[-1].seq, records[-1].hash)
                return
            # Keep them (already rolled up) for the next try.
            self._buffer = [(0, e) for e in events] + self._buffer
            log.error("audit append failed %d times; %d event(s) kept", MAX_RETRIES, len(events))
            raise StateError("could not append to the audit log: too much contention")

    def query(
        self,
        actor: str | None,
        event_type: str | None,
        since: float | None,
        limit: int,
    ) -> list[AuditRecord]:
        """Recent matching events, oldest first (after writing the buffer)."""
        self.flush()
        return self._store.audit_query(actor, event_type, since, limit)

    def checkpoint(self) -> Checkpoint:
        """The stored head now (after writing the buffer), to keep outside the database."""
        self.flush()
        head = self._store.audit_head() or (0, GENESIS)
        return Checkpoint(head[0], head[1], iso(self._clock.now()))

    def verify(self, checkpoints: tuple[Checkpoint, ...] = ()) -> ChainReport:
        """Verify the stored chain, the checkpoints, and one event per revision."""
        self.flush()
        if not checkpoints:
            return self._verify_since()
        # The revisions before the events: an apply commits its revision and its event
        # together, so every revision read here has its event in the rows read next (read
        # after, an apply committed in between would be a revision without its event).
        revisions = self._store.revision_numbers() or []
        try:
            records, head = self._store.audit_all()
        except StateError as exc:
            return ChainReport(False, 0, GENESIS, 1, str(exc))
        report = verify(records, head)
        if not report.ok:
            return report
        for checkpoint in checkpoints:
            problem = check_checkpoint(records, checkpoint)
            if problem is not None:
                first = min(len(records) + 1, checkpoint.seq)
                return replace(report, ok=False, first_bad=first, problem=problem)
        return _with_revisions(report, audited_revisions(records), revisions)

    def _verify_since(self) -> ChainReport:
        """``verify()`` resumed after the events this process already found intact."""
        mark = self._verified
        revisions = self._store.revision_numbers() or []  # before the events: see verify()
        try:
            scan = self._store.audit_scan(mark.seq if mark else 0)
            if mark is not None and scan.prefix != mark.digest:
                mark = None  # the rows walked before changed: walk them all again
                scan = self._store.audit_scan(0)
        except StateError as exc:
            return ChainReport(False, 0, GENESIS, 1, str(exc))
        start = (mark.seq, mark.hash) if mark else (0, GENESIS)
        report = verify(scan.records, scan.head, start)
        if not report.ok:
            return report
        audited = audited_revisions(scan.records)
        if mark is not None:
            audited |= mark.revisions
        self._verified = Verified(report.checked, report.head_hash, scan.digest, frozenset(audited))
        return _with_revisions(report, audited, revisions)


def _with_revisions(report: ChainReport, audited: set[int], revisions: list[int]) -> ChainReport:
    """``report`` (an intact chain), failed if a revision has no ``manifests.applied`` event."""
    missing = [n for n in revisions if n not in audited]
    problem = revisions_problem(missing, len(revisions), report.checked)
    return report if problem is None else replace(report, ok=False, problem=problem)
