"""API keys at run time: issue, rotate, revoke, list and validate.

Key format and hashing are ``devskyy.core.keys``; records live in the security store,
mirrored by a ``KeyIndex``. Over the API (``granted_by`` given) nobody hands out, rotates
or revokes more than the key they presented holds (``Access.no_escalation`` compares the
target key's rights, bindings of its principal included), and the last usable admin key
can be neither revoked nor rotated (``LastAdminKey``, 409). The local CLI passes
``force=True`` to do so anyway.

Validation checks the key first: a valid, unrevoked key is never refused because of the
address it came from (only a block on the key itself refuses it). Blocks by source stop
unauthenticated attempts only. Failures are rolled up in the audit log, one event per
source (or presented string), reason and window, with a count, so a flood of junk
requests adds a bounded number of rows.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from devskyy.adapters.clock import Clock
from devskyy.adapters.security_store import SecurityStore
from devskyy.core import keys as keyfmt
from devskyy.core.audit import iso
from devskyy.errors import NotFound, SecurityError, StateError
from devskyy.model.security import (
    ApiKeyRecord,
    EventType,
    KeyCheck,
    KeyReason,
    NewKey,
    Outcome,
    SecurityRole,
)
from devskyy.runtime.security.audit import AuditWriter
from devskyy.runtime.security.key_index import KeyIndex, usable
from devskyy.runtime.security.rbac import LOCAL, Access
from devskyy.runtime.security.threats import ThreatGuard

log = logging.getLogger("devskyy.security")

DEFAULT_KEY_TTL = 90 * 86_400.0
DEFAULT_GRACE = 86_400.0
LAST_USED_PRECISION = 60.0
Audit = Callable[..., None]


@dataclass(frozen=True)
class _Attempt:
    """A sign-in attempt: what threat detection counts it against, where it came from."""

    subject: str
    origin: str


class LastAdminKey(StateError):
    """The key is the last usable admin key: revoking or rotating it would lock admins out."""


def check_name(name: str, what: str) -> str:
    """``name`` if it is a printable name and not a pasted key (never echoed)."""
    if keyfmt.find_keys(name) or name.startswith(keyfmt.PREFIX + "_"):
        # Someone pasted a key where a name goes: refuse without echoing it anywhere.
        raise SecurityError(f"{what} looks like an API key; give a name, never a key")
    if not name or len(name) > 253 or any(ord(c) < 33 for c in name):
        raise SecurityError(f"{what} must be 1-253 printable characters without spaces")
    return name


class KeyService:
    """The key operations of one security manager."""

    def __init__(
        self,
        store: SecurityStore,
        clock: Clock,
        *,
        keys: KeyIndex,
        access: Access,
        threats: ThreatGuard,
        audit: AuditWriter,
        event: Audit,
        counters: dict[str, int],
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        key_ttl: float = DEFAULT_KEY_TTL,
    ) -> None:
        self._store = store
        self._clock = clock
        self._keys = keys
        self._access = access
        self._threats = threats
        self._audit = audit
        self._event = event
        self._counters = counters
        self._random = random_bytes
        self.key_ttl = key_ttl
        self.last_used: dict[str, float] = {}
        self._last_used_at: dict[str, float] = {}

    def _save(self, record: ApiKeyRecord, *, new: bool = False) -> ApiKeyRecord:
        record = replace(record, updated=self._clock.now())
        if new:
            self._store.add_key(record)
        else:
            self._store.put_key(record)
        self._keys.changed(record)
        self._access.forget_decisions()
        return record

    def _guard(self, granted_by: str | None, key_id: str | None, record: ApiKeyRecord) -> None:
        """Over the API: ``write keys`` and at least the target key's rights."""
        if granted_by is None:
            return
        self._access.require(granted_by, "write", "keys", key_id)
        rights = self._access.key_rights(record.principal, record.role)
        self._access.no_escalation(granted_by, key_id, rights, f"held by key {record.key_id}")

    def _last_admin_guard(self, record: ApiKeyRecord, action: str, force: bool) -> None:
        if force or not self._threats.last_admin(record):
            return
        if action.startswith("rotat"):
            verb, outcome = "rotate", "would leave its one replacement as the only way in"
        else:
            verb, outcome = "revoke", "would leave no admin able to sign in"
        raise LastAdminKey(
            f"key {record.key_id} is the last usable admin key: {action} it {outcome} "
            "(create another admin key first; on the server, "
            f"`devskyy keys {verb} --force` overrides)"
        )

    # Issue -------------------------------------------------------------------------
    def generate(
        self,
        agent_name: str,
        role: SecurityRole | str,
        expires_in: float | None,
        granted_by: str | None,
        key_id: str | None,
    ) -> NewKey:
        check_name(agent_name, "principal")
        name = self._access.role_name(role)
        if granted_by is not None:
            self._access.require(granted_by, "write", "keys", key_id)
            rights = self._access.key_rights(agent_name, name)
            what = f"to issue a {name!r} key for {agent_name}"
            self._access.no_escalation(granted_by, key_id, rights, what)
        return self.issue(
            agent_name, name, expires_in, rotated_from=None, actor=granted_by or LOCAL
        )

    def issue(
        self,
        principal: str,
        role: str,
        expires_in: float | None,
        *,
        rotated_from: str | None,
        actor: str,
    ) -> NewKey:
        ttl = self.key_ttl if expires_in is None else expires_in
        if ttl <= 0:
            raise SecurityError("a key must expire in the future")
        now = self._clock.now()
        for _ in range(5):
            issued = keyfmt.make_key(
                self._random(keyfmt.KEY_ID_BYTES), self._random(keyfmt.SECRET_BYTES)
            )
            record = ApiKeyRecord(
                issued.key_id,
                principal,
                role,
                issued.secret_hash,
                now,
                now + ttl,
                rotated_from=rotated_from,
            )
            try:
                record = self._save(record, new=True)
            except StateError:
                continue
            break
        else:
            raise StateError("could not allocate a unique key id")
        self._event(
            actor,
            EventType.KEY_CREATED,
            f"keys/{record.key_id}",
            Outcome.SUCCESS,
            key_id=record.key_id,
            principal=principal,
            role=role,
            expires=iso(record.expires),
            rotated_from=rotated_from,
        )
        log.info("api key %s created for %s (role %s)", record.key_id, principal, role)
        return NewKey(issued.key, record.key_id, principal, role, record.expires)

    def existing(self, key_id: str) -> ApiKeyRecord:
        if not keyfmt.KEY_ID_PATTERN.match(key_id):
            # Never echo the input: it may be a whole key pasted by mistake.
            raise SecurityError("not a key id (12 characters 0-9 a-z, as `keys list` shows)")
        record = self._store.get_key(key_id)
        if record is None:
            raise NotFound(f"no API key with id {key_id!r}")
        return record

    def rotate(
        self,
        key_id: str,
        grace_seconds: float,
        granted_by: str | None,
        presented: str | None,
        *,
        force: bool = False,
    ) -> NewKey:
        if grace_seconds < 0:
            raise SecurityError("grace must be >= 0 seconds")
        old = self.existing(key_id)
        now = self._clock.now()
        if not usable(old, now):
            raise SecurityError(f"key {key_id} is {old.state(now)} and cannot be rotated")
        self._guard(granted_by, presented, old)
        self._last_admin_guard(old, "rotating", force)
        grace_until = now + grace_seconds
        if old.grace_until is not None:
            grace_until = min(grace_until, old.grace_until)
        self._save(replace(old, grace_until=grace_until))
        self._event(
            granted_by or LOCAL,
            EventType.KEY_ROTATED,
            f"keys/{key_id}",
            Outcome.SUCCESS,
            key_id=key_id,
            principal=old.principal,
            grace_until=iso(grace_until),
        )
        return self.issue(
            old.principal, old.role, None, rotated_from=key_id, actor=granted_by or LOCAL
        )

    def revoke(
        self, key_id: str, granted_by: str | None, presented: str | None, *, force: bool = False
    ) -> bool:
        record = self.existing(key_id)
        self._guard(granted_by, presented, record)
        if record.revoked is not None:
            return False
        self._last_admin_guard(record, "revoking", force)
        self._save(replace(record, revoked=self._clock.now()))
        self._event(
            granted_by or LOCAL,
            EventType.KEY_REVOKED,
            f"keys/{key_id}",
            Outcome.SUCCESS,
            key_id=key_id,
            principal=record.principal,
        )
        log.info("api key %s revoked", key_id)
        return True

    def listing(self, principal: str | None) -> list[dict[str, Any]]:
        now = self._clock.now()
        return [
            {
                "key_id": k.key_id,
                "principal": k.principal,
                "role": k.role,
                "state": "blocked" if self._threats.blocked(f"key:{k.key_id}") else k.state(now),
                "created": iso(k.created),
                "expires": iso(k.expires),
                "last_used": None if k.last_used is None else iso(k.last_used),
                "rotated_from": k.rotated_from,
                "grace_until": None if k.grace_until is None else iso(k.grace_until),
            }
            for k in self._store.list_keys(principal)
        ]

    # Validate ----------------------------------------------------------------------
    def validate(
        self, api_key: str | NewKey, source: str | None, *, block_source: bool = True
    ) -> KeyCheck:
        """Who presents ``api_key``, or a reason code; failures feed threat detection.

        Failures count against the source address (``block_source``), else against the
        exact string presented; the audit roll-up is per source whenever one is known.
        """
        text = api_key.key if isinstance(api_key, NewKey) else str(api_key)
        digest = "presented:" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:24]
        # Threats count against ``subject``; the audit rolls failures up per ``origin``.
        subject = f"source:{source}" if source and block_source else digest
        who = _Attempt(subject, f"source:{source}" if source else digest)
        parsed = keyfmt.parse_key(text)
        record = None if isinstance(parsed, keyfmt.Malformed) else self._keys.get(parsed.key_id)
        now = self._clock.now()
        if (
            record is not None
            and not isinstance(parsed, keyfmt.Malformed)
            and keyfmt.verify(record.secret_hash, parsed)
            and usable(record, now)
        ):
            # A key that works is judged on its own: a block on the address it came from
            # (someone else's junk from behind the same proxy or NAT) never refuses it.
            return self._accepted(record, parsed, now)
        if self._threats.blocked(who.subject):
            self._counters["blocked"] += 1
            self._failure(who, KeyReason.BLOCKED, None)
            return KeyCheck(False, reason=KeyReason.BLOCKED, detail="too many failures")
        if isinstance(parsed, keyfmt.Malformed):
            return self._auth_failed(who, KeyReason.MALFORMED, parsed.reason, None)
        if record is None or not keyfmt.verify(record.secret_hash, parsed):
            return self._auth_failed(
                who, KeyReason.UNKNOWN, "no such key", parsed.key_id, real=False
            )
        state = record.state(now)
        if state == "revoked":
            return self._auth_failed(who, KeyReason.REVOKED, "key revoked", record.key_id)
        detail = "rotated; grace period over" if state == "rotated" else "key expired"
        return self._auth_failed(who, KeyReason.EXPIRED, detail, record.key_id)

    def _accepted(self, record: ApiKeyRecord, parsed: keyfmt.ParsedKey, now: float) -> KeyCheck:
        if self._threats.blocked(f"key:{record.key_id}") and not self._threats.last_admin(record):
            self._counters["blocked"] += 1
            return KeyCheck(
                False,
                record.principal,
                record.role,
                record.key_id,
                reason=KeyReason.BLOCKED,
                detail="too many denials",
            )
        if now - self._last_used_at.get(record.key_id, -LAST_USED_PRECISION) >= LAST_USED_PRECISION:
            # last_used is kept to the minute: one write per key per minute at most.
            self.last_used[record.key_id] = self._last_used_at[record.key_id] = now
        self._audit.count(  # directly, not through the event callback: the hot path
            now,
            record.principal,
            EventType.KEY_VALIDATED,
            f"keys/{record.key_id}",
            {"key_id": record.key_id},
        )
        state = record.state(now)
        expires = (
            record.expires if state == "active" else min(record.expires, record.grace_until or 0.0)
        )
        return KeyCheck(True, record.principal, record.role, record.key_id, expires, detail=state)

    def _failure(self, who: _Attempt, reason: KeyReason, key_id: str | None) -> None:
        """One failed attempt into this window's roll-up for its origin and reason.

        One row per source (not per junk string) and reason in each window. The key id is
        kept only for real keys (revoked, expired): an id made up by the caller would
        make every junk request its own row.
        """
        details: dict[str, Any] = {"reason": reason.value, "subject": who.origin}
        if key_id is not None:
            details["key_id"] = key_id
        self._audit.count(
            self._clock.now(),
            "unauthenticated",
            EventType.KEY_FAILED,
            f"keys/{key_id}" if key_id else "keys",
            details,
            outcome=Outcome.FAILURE,
        )

    def _auth_failed(
        self,
        who: _Attempt,
        reason: KeyReason,
        detail: str,
        key_id: str | None,
        *,
        real: bool = True,
    ) -> KeyCheck:
        self._counters["auth_failures"] += 1
        self._failure(who, reason, key_id if real else None)
        self._threats.offence(who.subject, None)
        return KeyCheck(False, key_id=key_id, reason=reason, detail=detail)

    def flush_last_used(self) -> None:
        used, self.last_used = self.last_used, {}
        self._store.touch(used)
