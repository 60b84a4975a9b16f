"""Threat detection at run time: counts failures, writes blocks, lifts them.

The decisions (how many failures, how long a block, whether a block would lock out
the last admin) are ``devskyy.core.threats``; this class keeps the failure counts in
memory and the blocks in the security store, mirrored in memory and reloaded when the
store's change counter moves (``SecurityManager.sync``, once per request), so a block
or unblock written by any process is honoured on the next request. It audits every
block, refused block and unblock through the callback it is given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from devskyy.adapters.clock import Clock
from devskyy.adapters.security_store import SecurityStore
from devskyy.core.audit import iso
from devskyy.core.threats import FailureCounter, ThreatPolicy, is_blocked, judge, may_block
from devskyy.model.security import ApiKeyRecord, BlockRecord, EventType, Outcome
from devskyy.runtime.security.key_index import KeyIndex, usable

log = logging.getLogger("devskyy.security")

Audit = Callable[..., None]


class ThreatGuard:
    """Failure counting and blocks for one security manager."""

    def __init__(
        self,
        store: SecurityStore,
        clock: Clock,
        policy: ThreatPolicy,
        keys: KeyIndex,
        *,
        is_admin: Callable[[ApiKeyRecord], bool],
        audit: Audit,
    ) -> None:
        self._store = store
        self._clock = clock
        self.policy = policy
        self._keys = keys
        self._is_admin = is_admin
        self._audit = audit
        self._failures = FailureCounter()
        self._blocks: dict[str, BlockRecord] | None = None

    def reload(self) -> None:
        """Forget the mirrored blocks; the next check reads them from the store."""
        self._blocks = None

    def _block_map(self) -> dict[str, BlockRecord]:
        blocks = self._blocks
        if blocks is None:
            blocks = self._blocks = {b.subject: b for b in self._store.blocks()}
        return blocks

    def blocked(self, subject: str) -> BlockRecord | None:
        """The block in force on ``subject``, if any."""
        record = self._block_map().get(subject)
        return record if is_blocked(record, self._clock.now()) else None

    def active(self) -> list[BlockRecord]:
        """Every block in force now (read fresh from the store)."""
        self._blocks = None
        now = self._clock.now()
        return [b for b in self._block_map().values() if is_blocked(b, now)]

    def _usable(self, record: ApiKeyRecord) -> bool:
        return usable(record, self._clock.now())

    def admins_besides(self, key_id: str) -> int:
        """Usable, unblocked admin keys other than ``key_id``."""
        return sum(
            1
            for k in self._keys.all()
            if k.key_id != key_id
            and self._usable(k)
            and not self.blocked(f"key:{k.key_id}")
            and self._is_admin(k)
        )

    def last_admin(self, record: ApiKeyRecord) -> bool:
        """Whether ``record`` is a usable admin key with no other admin able to get in."""
        return self._usable(record) and not may_block(
            self._is_admin(record), self.admins_besides(record.key_id)
        )

    def offence(self, subject: str, key: ApiKeyRecord | None) -> None:
        """Count one failure against ``subject``; block it when the policy says so."""
        now = self._clock.now()
        count = self._failures.record(subject, now, self.policy)
        verdict = judge(count, self._block_map().get(subject), now, self.policy)
        if not verdict.block:
            return
        self._failures.clear(subject)
        principal = key.principal if key else None
        if key is not None and self.last_admin(key):
            self._audit(
                key.principal,
                EventType.BLOCK_REFUSED,
                subject,
                Outcome.DENIED,
                reason="would lock out the last admin",
                failures=count,
            )
            log.warning("not blocking %s: it holds the last usable admin key", subject)
            return
        reason = f"{count} failures in {self.policy.window_seconds:g}s"
        record = BlockRecord(subject, verdict.until, verdict.offences, reason, principal)
        self._store.put_block(record)
        self._block_map()[subject] = record
        self._audit(
            principal or "unauthenticated",
            EventType.BLOCKED,
            subject,
            Outcome.SUCCESS,
            until=iso(verdict.until),
            offence=verdict.offences,
            seconds=verdict.seconds,
            failures=count,
        )
        log.warning("blocked %s for %gs (offence %d)", subject, verdict.seconds, verdict.offences)

    def lift(self, target: str, actor: str) -> list[str]:
        """Remove blocks on a subject, a key id, or every key of a principal."""
        self._blocks = None
        lifted = [
            b.subject
            for b in self._store.blocks()
            if target in (b.subject, b.principal) or b.subject == f"key:{target}"
        ]
        details: dict[str, Any] = {"principal": target}
        for subject in lifted:
            self._store.delete_block(subject)
            self._failures.clear(subject)
            self._audit(actor, EventType.UNBLOCKED, subject, Outcome.SUCCESS, **details)
        self._blocks = None
        return lifted
