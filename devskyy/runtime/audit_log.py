"""The audit log writer: chains events and appends them to the security store.

Rare, security-relevant events (keys created, rotated, revoked; failures; denials;
grants; blocks; manifests applied) are written at once. High-volume ones (a key
validated, a permission allowed) are buffered and written in one transaction when
``batch`` of them are waiting, when the oldest has waited ``max_delay`` seconds (checked
on the next event), before any read or verification, and on ``flush()``/``close()``.
That keeps a request's security checks at microseconds instead of a commit each;
a crash may lose at most ``max_delay`` seconds of *successful* validations.

Appends are optimistic: the writer remembers the head (count, last hash) it wrote; if
another process appended meanwhile, the store refuses with ``AuditConflict`` and the
writer re-reads the head and re-chains its events.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from devskyy.adapters.clock import Clock
from devskyy.adapters.security_store import AuditConflict, SecurityStore
from devskyy.core.audit import GENESIS, ChainReport, chain, verify
from devskyy.core.keys import find_keys
from devskyy.errors import StateError
from devskyy.model.security import AuditEvent, AuditRecord

log = logging.getLogger("devskyy.security.audit")

REDACTED = "[redacted]"
MAX_RETRIES = 20


def scrub(value: Any) -> Any:
    """``value`` with anything that looks like an API key replaced (defence in depth)."""
    if isinstance(value, str):
        for key in find_keys(value):
            value = value.replace(key, REDACTED)
        return value
    if isinstance(value, dict):
        return {str(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return scrub(str(value))


class AuditWriter:
    """Buffers, chains and appends audit events."""

    def __init__(
        self,
        store: SecurityStore,
        clock: Clock,
        *,
        batch: int = 100,
        max_delay: float = 1.0,
    ) -> None:
        self._store = store
        self._clock = clock
        self._batch = batch
        self._max_delay = max_delay
        self._buffer: list[AuditEvent] = []
        self._first_at = 0.0
        self._head: tuple[int, str] | None = None
        self._lock = threading.RLock()
        self.on_flush: list[Any] = []

    def record(self, event: AuditEvent, *, urgent: bool = True) -> None:
        """Queue ``event``; write now when urgent or when the buffer is due."""
        clean = AuditEvent(
            event.time,
            scrub(event.actor),
            event.event_type,
            scrub(event.resource),
            event.outcome,
            scrub(event.details),
        )
        with self._lock:
            if not self._buffer:
                self._first_at = self._clock.monotonic()
            self._buffer.append(clean)
            due = (
                urgent
                or len(self._buffer) >= self._batch
                or self._clock.monotonic() - self._first_at >= self._max_delay
            )
        if due:
            self.flush()

    def pending(self) -> int:
        """How many events wait in the buffer."""
        return len(self._buffer)

    def flush(self) -> None:
        """Write every buffered event (retrying when another writer got in first)."""
        with self._lock:
            events, self._buffer = self._buffer, []
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
            self._buffer = events + self._buffer
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

    def verify(self) -> ChainReport:
        """Verify the whole stored chain (after writing the buffer)."""
        self.flush()
        records, head = self._store.audit_all()
        return verify(records, head)
