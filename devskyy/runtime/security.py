"""The security manager: API keys, RBAC, the audit log, rate limits, threat blocking.

``SecurityManager`` wires the pure decisions of ``devskyy.core`` (key format and
hashing, RBAC, rate-limit log, threat judgement, audit chain) to a ``SecurityStore``
and a ``Clock``. Roles and RoleBindings come from the applied manifests through
``roles_source`` (e.g. ``SqlStateStore(engine).live``); keys, runtime grants, blocks
and the audit log live in the security store.

Caches keep the hot path (``validate_api_key``, ``check_permission``,
``check_rate_limit``) in memory: key records by key id (never secrets), compiled
RBAC policy and memoized decisions, and active blocks. Local changes invalidate them
at once; changes made by another process (a CLI revoking a key while a server runs)
are seen within ``refresh_seconds`` (default 5 s).

Passing ``granted_by`` (a principal) to ``generate_api_key``, ``rotate_api_key``,
``grant_resource_access`` or ``unblock`` enforces that it may do so, without
escalation; leaving it out means a trusted local operator (the CLI, with the store
in hand).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from devskyy.adapters.clock import Clock, SystemClock
from devskyy.adapters.security_store import SecurityStore, SqlSecurityStore
from devskyy.core import keys as keyfmt
from devskyy.core.audit import ChainReport, iso
from devskyy.core.ratelimit import DEFAULT_LIMIT, DEFAULT_WINDOW, RateDecision, SlidingWindowLog
from devskyy.core.rbac import PERMISSIONS, Decision, Policy, can_grant
from devskyy.core.threats import ThreatPolicy
from devskyy.errors import NotFound, PermissionDenied, SecurityError, StateError
from devskyy.model.resources import ResourceSet
from devskyy.model.security import (
    ApiKeyRecord,
    AuditEvent,
    BlockRecord,
    EventType,
    Grant,
    KeyCheck,
    KeyReason,
    NewKey,
    Outcome,
    SecurityRole,
)
from devskyy.runtime.audit_log import AuditWriter
from devskyy.runtime.key_index import KeyIndex
from devskyy.runtime.threat_guard import ThreatGuard

log = logging.getLogger("devskyy.security")

DEFAULT_KEY_TTL = 90 * 86_400.0
DEFAULT_GRACE = 86_400.0
AUDIT_LIMIT_CAP = 1000
LOCAL = "local"
LAST_USED_PRECISION = 60.0

__all__ = ["KeyCheck", "KeyReason", "NewKey", "SecurityManager", "SecurityRole"]


def _engine_store(store: Engine | SecurityStore) -> SecurityStore:
    return SqlSecurityStore(store) if isinstance(store, Engine) else store


def _check_name(name: str, what: str) -> str:
    if keyfmt.find_keys(name) or name.startswith(keyfmt.PREFIX + "_"):
        # Someone pasted a key where a name goes: refuse without echoing it anywhere.
        raise SecurityError(f"{what} looks like an API key; give a name, never a key")
    if not name or len(name) > 253 or any(ord(c) < 33 for c in name):
        raise SecurityError(f"{what} must be 1-253 printable characters without spaces")
    return name


class SecurityManager:
    """The guide's security manager, backed by a store and a clock."""

    def __init__(
        self,
        store: Engine | SecurityStore,
        clock: Clock | None = None,
        roles_source: Callable[[], ResourceSet] | None = None,
        *,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        threat_policy: ThreatPolicy | None = None,
        key_ttl_seconds: float = DEFAULT_KEY_TTL,
        refresh_seconds: float = 5.0,
        audit_batch: int = 500,
        audit_max_delay: float = 1.0,
        audit_rollup_seconds: float = 60.0,
    ) -> None:
        self.store = _engine_store(store)
        self.clock: Clock = clock or SystemClock()
        self._roles_source = roles_source or ResourceSet
        self._random = random_bytes
        self.key_ttl = key_ttl_seconds
        self._refresh = refresh_seconds
        self._lock = threading.RLock()
        self.audit = AuditWriter(
            self.store,
            self.clock,
            batch=audit_batch,
            max_delay=audit_max_delay,
            rollup_seconds=audit_rollup_seconds,
        )
        self.audit.on_flush.append(self._flush_last_used)
        self._rates = SlidingWindowLog()
        self._rate_audited: dict[str, float] = {}
        self._last_used: dict[str, float] = {}
        self._last_used_at: dict[str, float] = {}
        self._counters = {"auth_failures": 0, "denials": 0, "rate_limited": 0, "blocked": 0}
        self._threat_policy = threat_policy or ThreatPolicy()
        self._invalidate_all()

    # Caches --------------------------------------------------------------------
    def _invalidate_all(self) -> None:
        with self._lock:
            self._policy: Policy | None = None
            self._policy_at = 0.0
            self._rate_limits: dict[str, tuple[int, float]] = {}
            self._role_names: set[str] = set()
            self._memo: dict[tuple[str, str, str, tuple[str, ...]], Decision] = {}
            self._keys = KeyIndex(self.store, self.clock, self._refresh)
            self.threats = ThreatGuard(
                self.store,
                self.clock,
                self._threat_policy,
                self._keys,
                is_admin=self._is_admin,
                audit=self._event,
                refresh_seconds=self._refresh,
            )

    def _invalidate_policy(self) -> None:
        with self._lock:
            self._policy = None
            self._memo.clear()

    def _save_key(self, record: ApiKeyRecord, *, new: bool = False) -> ApiKeyRecord:
        record = replace(record, updated=self.clock.now())
        if new:
            self.store.add_key(record)
        else:
            self.store.put_key(record)
        self._keys.changed(record)
        with self._lock:
            self._memo.clear()
        return record

    def _fresh(self, loaded_at: float) -> bool:
        return self.clock.monotonic() - loaded_at < self._refresh

    def policy(self) -> Policy:
        """The compiled RBAC policy (roles, bindings, grants), rebuilt when stale."""
        policy = self._policy
        if policy is not None and self._fresh(self._policy_at):
            return policy
        live = self._roles_source()
        policy = Policy(live.roles, live.role_bindings, self.store.grants())
        with self._lock:
            self._policy, self._policy_at = policy, self.clock.monotonic()
            self._role_names = {r.name for r in live.roles}
            self._rate_limits = {
                a.name: (a.spec.rate_limit.requests, float(a.spec.rate_limit.window_seconds))
                for a in live.agents
                if a.spec.rate_limit is not None
            }
            self._memo = {}
        return policy

    def _record(self, key_id: str) -> ApiKeyRecord | None:
        return self._keys.get(key_id)

    def _usable(self, record: ApiKeyRecord) -> bool:
        return record.state(self.clock.now()) in ("active", "grace")

    def key_roles(self, principal: str) -> tuple[str, ...]:
        """Roles the principal holds through keys that work now."""
        return self._keys.roles(principal, self.clock.now())

    def _blocked(self, subject: str) -> BlockRecord | None:
        return self.threats.blocked(subject)

    def _event(
        self,
        actor: str,
        event_type: EventType,
        resource: str,
        outcome: Outcome,
        *,
        urgent: bool = True,
        rollup: bool = False,
        **details: Any,
    ) -> None:
        if rollup:
            self.audit.count(self.clock.now(), actor, event_type, resource, details)
            return
        event = AuditEvent(self.clock.now(), actor, event_type, resource, outcome, details)
        self.audit.record(event, urgent=urgent)

    def _flush_last_used(self) -> None:
        used, self._last_used = self._last_used, {}
        self.store.touch(used)

    def flush(self) -> None:
        """Write buffered audit events and last-used times."""
        self.audit.flush()

    def close(self) -> None:
        """Flush everything; call on shutdown."""
        self.flush()

    # Roles ---------------------------------------------------------------------
    def roles(self) -> list[str]:
        """Every role name a key may carry: the built-ins and the applied ones."""
        self.policy()
        return sorted({r.value for r in SecurityRole} | self._role_names)

    def _role_name(self, role: SecurityRole | str) -> str:
        name = role.value if isinstance(role, SecurityRole) else str(role).lower()
        if name not in self.roles():
            raise NotFound(f"role {name!r} does not exist (known: {', '.join(self.roles())})")
        return name

    def _require(self, principal: str, permission: str, resource: str) -> None:
        decision = self.authorize(principal, resource, permission)
        if not decision.allowed:
            raise PermissionDenied(decision.reason)

    def _no_escalation(self, granter: str, requested: list[tuple[str, str]]) -> None:
        policy = self.policy()
        decision = can_grant(policy.holdings(granter, self.key_roles(granter)), requested)
        if not decision.allowed:
            self._counters["denials"] += 1
            self._event(
                granter, EventType.PERMISSION_DENIED, "keys", Outcome.DENIED, reason=decision.reason
            )
            raise PermissionDenied(decision.reason)

    # API keys ------------------------------------------------------------------
    def generate_api_key(
        self,
        agent_name: str,
        role: SecurityRole | str = SecurityRole.SERVICE,
        *,
        expires_in: float | None = None,
        granted_by: str | None = None,
    ) -> NewKey:
        """Create a key for ``agent_name`` with ``role``; the full key is returned once."""
        _check_name(agent_name, "principal")
        name = self._role_name(role)
        if granted_by is not None:
            self._require(granted_by, "write", "keys")
            self._no_escalation(granted_by, self.policy().role_holdings(name))
        return self._issue(
            agent_name, name, expires_in, rotated_from=None, actor=granted_by or LOCAL
        )

    def _issue(
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
        now = self.clock.now()
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
                record = self._save_key(record, new=True)
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

    def _existing(self, key_id: str) -> ApiKeyRecord:
        if not keyfmt.KEY_ID_PATTERN.match(key_id):
            # Never echo the input: it may be a whole key pasted by mistake.
            raise SecurityError("not a key id (12 characters 0-9 a-z, as `keys list` shows)")
        record = self.store.get_key(key_id)
        if record is None:
            raise NotFound(f"no API key with id {key_id!r}")
        return record

    def rotate_api_key(
        self, key_id: str, grace_seconds: float = DEFAULT_GRACE, *, granted_by: str | None = None
    ) -> NewKey:
        """Replace a key; the old one keeps working for ``grace_seconds`` (0: compromised)."""
        if grace_seconds < 0:
            raise SecurityError("grace must be >= 0 seconds")
        old = self._existing(key_id)
        now = self.clock.now()
        if old.state(now) not in ("active", "grace"):
            raise SecurityError(f"key {key_id} is {old.state(now)} and cannot be rotated")
        if granted_by is not None:
            self._require(granted_by, "write", "keys")
            self._no_escalation(granted_by, self.policy().role_holdings(old.role))
        grace_until = now + grace_seconds
        if old.grace_until is not None:
            grace_until = min(grace_until, old.grace_until)
        self._save_key(replace(old, grace_until=grace_until))
        self._event(
            granted_by or LOCAL,
            EventType.KEY_ROTATED,
            f"keys/{key_id}",
            Outcome.SUCCESS,
            key_id=key_id,
            principal=old.principal,
            grace_until=iso(grace_until),
        )
        return self._issue(
            old.principal, old.role, None, rotated_from=key_id, actor=granted_by or LOCAL
        )

    def revoke_api_key(self, key_id: str, *, granted_by: str | None = None) -> bool:
        """Revoke a key at once; False when it was already revoked."""
        record = self._existing(key_id)
        if granted_by is not None:
            self._require(granted_by, "write", "keys")
        if record.revoked is not None:
            return False
        self._save_key(replace(record, revoked=self.clock.now()))
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

    def list_api_keys(self, principal: str | None = None) -> list[dict[str, Any]]:
        """Every key's public facts (id, principal, role, state, times); never a secret."""
        self.flush()
        now = self.clock.now()
        return [
            {
                "key_id": k.key_id,
                "principal": k.principal,
                "role": k.role,
                "state": "blocked" if self._blocked(f"key:{k.key_id}") else k.state(now),
                "created": iso(k.created),
                "expires": iso(k.expires),
                "last_used": None if k.last_used is None else iso(k.last_used),
                "rotated_from": k.rotated_from,
                "grace_until": None if k.grace_until is None else iso(k.grace_until),
            }
            for k in self.store.list_keys(principal)
        ]

    def validate_api_key(self, api_key: str | NewKey, *, source: str | None = None) -> KeyCheck:
        """Who presents ``api_key``, or a reason code; failures feed threat detection."""
        text = api_key.key if isinstance(api_key, NewKey) else str(api_key)
        presented = (
            f"source:{source}"
            if source
            else "presented:" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:24]
        )
        parsed = keyfmt.parse_key(text)
        if self._blocked(presented) and not self._last_admin_key(parsed):
            self._counters["blocked"] += 1
            return KeyCheck(False, reason=KeyReason.BLOCKED, detail="too many failures")
        if isinstance(parsed, keyfmt.Malformed):
            return self._auth_failed(presented, KeyReason.MALFORMED, parsed.reason, None)
        record = self._record(parsed.key_id)
        if record is None or not keyfmt.verify(record.secret_hash, parsed):
            return self._auth_failed(presented, KeyReason.UNKNOWN, "no such key", parsed.key_id)
        now = self.clock.now()
        state = record.state(now)
        if state == "revoked":
            return self._auth_failed(presented, KeyReason.REVOKED, "key revoked", record.key_id)
        if state not in ("active", "grace"):
            detail = "rotated; grace period over" if state == "rotated" else "key expired"
            return self._auth_failed(presented, KeyReason.EXPIRED, detail, record.key_id)
        if self._blocked(f"key:{record.key_id}") and not self._last_admin_key(parsed):
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
            self._last_used[record.key_id] = self._last_used_at[record.key_id] = now
        self.audit.count(  # directly, not through _event: the per-request hot path
            now,
            record.principal,
            EventType.KEY_VALIDATED,
            f"keys/{record.key_id}",
            {"key_id": record.key_id},
        )
        expires = (
            record.expires if state == "active" else min(record.expires, record.grace_until or 0.0)
        )
        return KeyCheck(True, record.principal, record.role, record.key_id, expires, detail=state)

    def _last_admin_key(self, parsed: keyfmt.ParsedKey | keyfmt.Malformed) -> bool:
        """Whether ``parsed`` is the last usable admin key (a blocked source lets it in)."""
        if isinstance(parsed, keyfmt.Malformed):
            return False
        record = self._record(parsed.key_id)
        return (
            record is not None
            and keyfmt.verify(record.secret_hash, parsed)
            and self.threats.last_admin(record)
        )

    def _auth_failed(
        self, presented: str, reason: KeyReason, detail: str, key_id: str | None
    ) -> KeyCheck:
        self._counters["auth_failures"] += 1
        self._event(
            "unauthenticated",
            EventType.KEY_FAILED,
            f"keys/{key_id}" if key_id else "keys",
            Outcome.FAILURE,
            reason=reason.value,
            detail=detail,
            key_id=key_id,
            subject=presented,
        )
        self.threats.offence(presented, None)
        return KeyCheck(False, key_id=key_id, reason=reason, detail=detail)

    # Threat detection ----------------------------------------------------------
    def _is_admin(self, record: ApiKeyRecord) -> bool:
        return self.policy().decide(record.principal, "admin", "*", (record.role,)).allowed

    def unblock(self, principal: str, *, granted_by: str | None = None) -> list[str]:
        """Lift blocks on a subject (``key:ID``, ``source:ADDR``), a key id, or a principal."""
        _check_name(principal, "principal")
        if granted_by is not None:
            self._require(granted_by, "admin", "security")
        return self.threats.lift(principal, granted_by or LOCAL)

    # Authorization -------------------------------------------------------------
    def authorize(
        self,
        agent_name: str,
        resource: str,
        permission: str,
        *,
        presented_key_id: str | None = None,
    ) -> Decision:
        """The RBAC decision, audited; denials count against a presented key id.

        With ``presented_key_id`` (the key that authenticated the request) only that
        key's role counts, besides bindings and grants: a request made with a guest key
        gets guest rights even if its owner also holds an admin key. Without it, the
        roles of all the principal's usable keys count (the guide's call by name).
        """
        record = None
        if presented_key_id is not None:
            if self._blocked(f"key:{presented_key_id}"):
                return Decision(False, f"key {presented_key_id} is blocked")
            record = self._record(presented_key_id)
        policy = self.policy()  # first: a rebuilt policy empties the memo
        now = self.clock.now()
        if presented_key_id is None:
            roles = self._keys.roles(agent_name, now)
        elif record is not None and record.principal == agent_name and self._usable(record):
            roles = (record.role,)
        else:
            roles = ()
        memo_key = (agent_name, permission, resource, roles)
        decision = self._memo.get(memo_key)
        if decision is None:
            decision = policy.decide(agent_name, permission, resource, roles)
            if len(self._memo) > 100_000:
                self._memo.clear()
            self._memo[memo_key] = decision
        # The audit writer is called directly (not through ``_event``): this is the
        # per-request hot path.
        if decision.allowed:
            self.audit.count(
                now,
                agent_name,
                EventType.PERMISSION_ALLOWED,
                resource,
                {"permission": permission, "rule": decision.matched_rule},
            )
            return decision
        self._counters["denials"] += 1
        self.audit.record(
            AuditEvent(
                now,
                agent_name,
                EventType.PERMISSION_DENIED,
                resource,
                Outcome.DENIED,
                {"permission": permission, "reason": decision.reason},
            ),
            urgent=False,
        )
        if record is not None and record.principal == agent_name:
            self.threats.offence(f"key:{presented_key_id}", record)
        return decision

    def explain(self, agent_name: str, resource: str, permission: str) -> Decision:
        """The RBAC decision alone: not audited, no threat counting (``can-i``)."""
        return self.policy().decide(agent_name, permission, resource, self.key_roles(agent_name))

    def check_permission(
        self,
        agent_name: str,
        resource: str,
        permission: str,
        *,
        presented_key_id: str | None = None,
    ) -> bool:
        """Whether ``agent_name`` may ``permission`` on ``resource`` (the guide's call)."""
        return self.authorize(
            agent_name, resource, permission, presented_key_id=presented_key_id
        ).allowed

    def grant_resource_access(
        self,
        resource: str,
        agent_name: str,
        permission: str = "read",
        *,
        granted_by: str | None = None,
    ) -> bool:
        """Grant ``permission`` on ``resource``; False when the grant already existed."""
        _check_name(agent_name, "principal")
        _check_name(resource, "resource")
        if permission not in PERMISSIONS:
            raise SecurityError(f"unknown permission {permission!r} (use {', '.join(PERMISSIONS)})")
        if granted_by is not None:
            self._no_escalation(granted_by, [(permission, resource)])
        grant = Grant(agent_name, resource, permission, granted_by or LOCAL, self.clock.now())
        added = self.store.add_grant(grant)
        self._invalidate_policy()
        if added:
            self._event(
                granted_by or LOCAL,
                EventType.GRANT_ADDED,
                resource,
                Outcome.SUCCESS,
                principal=agent_name,
                permission=permission,
            )
        return added

    def revoke_resource_access(
        self,
        resource: str,
        agent_name: str,
        permission: str = "read",
        *,
        granted_by: str | None = None,
    ) -> bool:
        """Remove a runtime grant; False when there was none."""
        if granted_by is not None:
            self._no_escalation(granted_by, [(permission, resource)])
        removed = self.store.remove_grant(agent_name, resource, permission)
        self._invalidate_policy()
        if removed:
            self._event(
                granted_by or LOCAL,
                EventType.GRANT_REVOKED,
                resource,
                Outcome.SUCCESS,
                principal=agent_name,
                permission=permission,
            )
        return removed

    # Rate limiting -------------------------------------------------------------
    def rate_limit(
        self, agent_name: str, limit: int | None = None, window_seconds: float | None = None
    ) -> RateDecision:
        """Count one request; explicit limits win over the manifest's ``rateLimit``."""
        self.policy()
        manifest = self._rate_limits.get(agent_name, (DEFAULT_LIMIT, DEFAULT_WINDOW))
        use_limit = limit if limit is not None else manifest[0]
        window = float(window_seconds) if window_seconds is not None else manifest[1]
        mono = self.clock.monotonic()
        with self._lock:
            decision = self._rates.hit(agent_name, mono, use_limit, window)
        if not decision.allowed:
            self._counters["rate_limited"] += 1
            # One audit event per principal per window, so a flood cannot flood the log.
            if self._rate_audited.get(agent_name, -1.0) <= mono:
                self._rate_audited[agent_name] = mono + window
                self._event(
                    agent_name,
                    EventType.RATE_LIMITED,
                    "rate",
                    Outcome.DENIED,
                    limit=use_limit,
                    window=window,
                    retry_after=decision.retry_after,
                )
        return decision

    def check_rate_limit(
        self, agent_name: str, limit: int | None = None, window_seconds: float | None = None
    ) -> bool:
        """The guide's call: True when the request is within the limit."""
        return self.rate_limit(agent_name, limit, window_seconds).allowed

    # Audit, summary ------------------------------------------------------------
    def get_audit_log(
        self,
        agent_name: str | None = None,
        event_type: str | EventType | None = None,
        since: float | datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Recent events, oldest first; ``limit`` is capped at 1000."""
        if limit < 1:
            raise SecurityError("limit must be at least 1")
        kind = None
        if event_type is not None:
            known = [e.value for e in EventType]
            kind = str(event_type.value if isinstance(event_type, EventType) else event_type)
            if kind not in known:
                raise SecurityError(f"unknown event type {kind!r} (known: {', '.join(known)})")
        start = since.timestamp() if isinstance(since, datetime) else since
        records = self.audit.query(agent_name, kind, start, min(limit, AUDIT_LIMIT_CAP))
        return [
            {
                "seq": r.seq,
                "time": iso(r.time),
                "actor": r.actor,
                "event_type": r.event_type,
                "resource": r.resource,
                "outcome": r.outcome,
                "details": r.details,
                "hash": r.hash,
            }
            for r in records
        ]

    def verify_audit_log(self) -> ChainReport:
        """Check the hash chain; the report names the first bad event."""
        return self.audit.verify()

    def audit_manifests_applied(
        self, revision: int | str, *, actor: str = "reconciler", **details: Any
    ) -> None:
        """Record an applied revision and reload roles and bindings."""
        self._event(
            actor,
            EventType.MANIFESTS_APPLIED,
            "manifests",
            Outcome.SUCCESS,
            revision=revision,
            **details,
        )
        self._invalidate_policy()

    def get_security_summary(self) -> dict[str, Any]:
        """Counts of keys by state, principals, roles, grants, blocks and audit events."""
        self.flush()
        now = self.clock.now()
        states: dict[str, int] = {}
        principals: set[str] = set()
        for k in self.store.list_keys():
            states[k.state(now)] = states.get(k.state(now), 0) + 1
            principals.add(k.principal)
        active = self.threats.active()
        return {
            "api_keys": {"total": sum(states.values()), **dict(sorted(states.items()))},
            "principals": len(principals),
            "roles": self.roles(),
            "grants": len(self.store.grants()),
            "active_blocks": [
                {"subject": b.subject, "until": iso(b.until), "offences": b.offences}
                for b in active
            ],
            "audit_events": self.store.audit_count(),
            "since_start": dict(self._counters),
        }
