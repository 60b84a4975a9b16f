"""An in-memory mirror of the API key records (hashes only), refreshed on a change mark.

Validating a key or finding a principal's key roles must not cost a full read of the
keys per request. The index loads every record once; after that ``refresh()`` fetches
only the records whose ``updated`` time is recent (with an overlap, so that writers
whose clocks differ a little are not missed). It is called when the store's change
counter moved (``SecurityManager.sync``, once per request), so a key created, revoked
or rotated by any process is seen on the next request; no time-based staleness.
Local changes go straight into the index.

It holds hashes, never secrets.
"""

from __future__ import annotations

import threading

from devskyy.adapters.clock import Clock
from devskyy.adapters.security_store import SecurityStore
from devskyy.model.security import ApiKeyRecord

OVERLAP_SECONDS = 120.0


def _changes(record: ApiKeyRecord) -> tuple[float, ...]:
    """The times at which ``record.state`` may change."""
    times = [record.expires]
    if record.grace_until is not None:
        times.append(record.grace_until)
    if record.revoked is not None:
        times.append(record.revoked)
    return tuple(times)


class KeyIndex:
    """Key records by key id and by principal."""

    def __init__(self, store: SecurityStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._by_id: dict[str, ApiKeyRecord] = {}
        self._by_principal: dict[str, dict[str, ApiKeyRecord]] = {}
        # principal -> (roles of its usable keys, the wall-time span in which that holds)
        self._roles: dict[str, tuple[tuple[str, ...], float, float]] = {}
        self._loaded = False
        self._loaded_wall = 0.0

    def _put(self, record: ApiKeyRecord) -> None:
        old = self._by_id.get(record.key_id)
        if old is not None and old.principal != record.principal:
            self._by_principal.get(old.principal, {}).pop(record.key_id, None)
        self._by_id[record.key_id] = record
        self._by_principal.setdefault(record.principal, {})[record.key_id] = record
        self._roles.pop(record.principal, None)
        if old is not None:
            self._roles.pop(old.principal, None)

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self.refresh()

    def refresh(self) -> None:
        """Load every record the first time, then only those changed since (with overlap)."""
        wall = self._clock.now()
        with self._lock:
            if not self._loaded:
                records = self._store.list_keys()
            else:
                records = self._store.keys_updated_since(self._loaded_wall - OVERLAP_SECONDS)
            for record in records:
                self._put(record)
            self._loaded, self._loaded_wall = True, wall

    def get(self, key_id: str) -> ApiKeyRecord | None:
        """The record of ``key_id`` (as of the last refresh or local change)."""
        self._ensure_loaded()
        return self._by_id.get(key_id)

    def of(self, principal: str) -> list[ApiKeyRecord]:
        """Every key of ``principal``."""
        self._ensure_loaded()
        return list(self._by_principal.get(principal, {}).values())

    def roles(self, principal: str, now: float) -> tuple[str, ...]:
        """The sorted roles of ``principal``'s keys that work at ``now`` (active or grace).

        Kept per principal until the next moment one of its keys changes state (expires,
        leaves its grace period, or reaches a revocation time) or a record changes.
        """
        self._ensure_loaded()
        cached = self._roles.get(principal)
        if cached is not None and cached[1] <= now < cached[2]:
            return cached[0]
        records = list(self._by_principal.get(principal, {}).values())
        roles = tuple(sorted({k.role for k in records if usable(k, now)}))
        until = min(
            (t for k in records for t in _changes(k) if t > now),
            default=float("inf"),
        )
        if len(self._roles) > 100_000:
            self._roles.clear()
        self._roles[principal] = (roles, now, until)
        return roles

    def all(self) -> list[ApiKeyRecord]:
        """Every key."""
        self._ensure_loaded()
        return list(self._by_id.values())

    def changed(self, record: ApiKeyRecord) -> None:
        """A local write: mirror it at once."""
        with self._lock:
            self._put(record)

    def reset(self) -> None:
        """Forget everything; the next use reloads."""
        with self._lock:
            self._by_id.clear()
            self._by_principal.clear()
            self._roles.clear()
            self._loaded = False


def usable(record: ApiKeyRecord, now: float) -> bool:
    """Whether a key works at ``now`` (active, or rotated and still in its grace)."""
    return record.state(now) in ("active", "grace")
