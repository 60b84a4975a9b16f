"""``MemorySecurityStore``: the in-memory twin of ``SqlSecurityStore`` (same contract).

``tests/test_security_store.py`` runs one contract over both (and over PostgreSQL). Its
change counters and ``revisions`` stand for the SQL store's ``security_version`` rows and
``revisions`` table, so tests can play another process changing either.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import astuple, replace

from devskyy.adapters.security_store import (
    BLOCKS,
    GRANTS,
    KEYS,
    MAX_QUERY,
    AuditConflict,
    AuditScan,
    Marks,
    scan_rows,
)
from devskyy.errors import StateError
from devskyy.model.security import ApiKeyRecord, AuditRecord, BlockRecord, Grant


class MemorySecurityStore:
    """The in-memory twin of ``SqlSecurityStore`` (same contract, no database)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, ApiKeyRecord] = {}
        self._grants: list[Grant] = []
        self._audit: list[AuditRecord] = []
        self._head: tuple[int, str] | None = None
        self._blocks: dict[str, BlockRecord] = {}
        self.counters = {KEYS: 0, GRANTS: 0, BLOCKS: 0}
        self.revisions: list[int] | None = None

    def marks(self) -> Marks:
        c = self.counters
        return Marks(c[KEYS], c[GRANTS], c[BLOCKS], max(self.revisions) if self.revisions else None)

    def revision_numbers(self) -> list[int] | None:
        return None if self.revisions is None else list(self.revisions)

    def add_key(self, record: ApiKeyRecord) -> None:
        with self._lock:
            if record.key_id in self._keys:
                raise StateError(f"key {record.key_id} exists")
            self._keys[record.key_id] = record
            self.counters[KEYS] += 1

    def get_key(self, key_id: str) -> ApiKeyRecord | None:
        return self._keys.get(key_id)

    def list_keys(self, principal: str | None = None) -> list[ApiKeyRecord]:
        found = [k for k in self._keys.values() if principal in (None, k.principal)]
        return sorted(found, key=lambda k: (k.created, k.key_id))

    def put_key(self, record: ApiKeyRecord) -> None:
        with self._lock:
            if record.key_id in self._keys:
                self._keys[record.key_id] = record
                self.counters[KEYS] += 1

    def touch(self, last_used: dict[str, float]) -> None:
        with self._lock:
            for key_id, when in last_used.items():
                if key_id in self._keys:
                    self._keys[key_id] = replace(self._keys[key_id], last_used=when)

    def add_grant(self, grant: Grant) -> bool:
        with self._lock:
            triple = (grant.principal, grant.resource, grant.permission)
            if any((g.principal, g.resource, g.permission) == triple for g in self._grants):
                return False
            self._grants.append(grant)
            self.counters[GRANTS] += 1
            return True

    def remove_grant(self, principal: str, resource: str, permission: str) -> bool:
        with self._lock:
            before = len(self._grants)
            self._grants = [
                g
                for g in self._grants
                if (g.principal, g.resource, g.permission) != (principal, resource, permission)
            ]
            removed = len(self._grants) != before
            self.counters[GRANTS] += removed
            return removed

    def grants(self) -> list[Grant]:
        return list(self._grants)

    def keys_updated_since(self, since: float) -> list[ApiKeyRecord]:
        return [k for k in self._keys.values() if k.updated >= since]

    def audit_head(self) -> tuple[int, str] | None:
        return self._head

    def append_audit(self, records: list[AuditRecord], after: int) -> None:
        if not records:
            return
        with self._lock:
            current = 0 if self._head is None else self._head[0]
            if current != after:
                raise AuditConflict(f"audit head moved from {after} to {current}")
            self._audit.extend(records)
            self._head = (records[-1].seq, records[-1].hash)

    def audit_query(
        self,
        actor: str | None = None,
        event_type: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        found = [
            r
            for r in self._audit
            if actor in (None, r.actor)
            and event_type in (None, r.event_type)
            and (since is None or r.time >= since)
        ]
        count = max(0, min(limit, MAX_QUERY))
        return found[len(found) - count :] if count else []

    def audit_all(self) -> tuple[list[AuditRecord], tuple[int, str] | None]:
        with self._lock:
            return list(self._audit), self._head

    def audit_scan(self, after: int) -> AuditScan:
        records, head = self.audit_all()
        prefix, digest, tail = scan_rows(records, after, astuple, lambda r: r)  # every field
        return AuditScan(prefix, digest, tail, head)

    def audit_count(self) -> int:
        return len(self._audit)

    def get_block(self, subject: str) -> BlockRecord | None:
        return self._blocks.get(subject)

    def put_block(self, record: BlockRecord) -> None:
        with self._lock:
            self._blocks[record.subject] = record
            self.counters[BLOCKS] += 1

    def delete_block(self, subject: str) -> bool:
        with self._lock:
            removed = self._blocks.pop(subject, None) is not None
            self.counters[BLOCKS] += removed
            return removed

    def blocks(self) -> list[BlockRecord]:
        return sorted(self._blocks.values(), key=lambda b: b.subject)

    # Test helpers for tampering (the SQL twin is tampered with through SQL).
    def tamper(self, records: Iterable[AuditRecord]) -> None:
        """Replace the stored log wholesale (tests simulate an attacker with this)."""
        with self._lock:
            self._audit = list(records)
