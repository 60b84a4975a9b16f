"""The security manager: the guide's API over keys, RBAC, audit, limits and threats.

``SecurityManager`` wires the parts of this package to a ``SecurityStore`` and a
``Clock``: ``KeyService`` (keys), ``Access`` (RBAC policy, decisions, grants),
``RateLimits``, ``ThreatGuard`` (failure counts, blocks) and ``AuditWriter`` (the hash
chain). Roles and RoleBindings come from the applied manifests through
``roles_source`` (e.g. ``SqlStateStore(engine).live``); keys, runtime grants, blocks
and the audit log live in the security store.

Nothing is cached for a time. ``sync()`` reads, in one query, the store's change
counters (one per kind: keys, grants, blocks; raised with every write of that kind, by
any process) and its latest revision, and reloads exactly what moved: key records on a
new keys counter, blocks on a new blocks counter, the policy on a new grants counter or
revision. ``validate_api_key`` calls it, so each request sees every revocation, block,
grant and Roles revision committed before it, on every server sharing the store.

Passing ``granted_by`` (a principal) and ``presented_key_id`` (the key it signed in
with) to the key and grant operations enforces that it may do so, without escalation,
judged by that key's rights; leaving ``granted_by`` out means a trusted local operator
(the CLI, with the store in hand).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from devskyy.adapters.clock import Clock, SystemClock
from devskyy.adapters.engine import Engine, is_engine
from devskyy.adapters.rate_store import SqlRateWindows
from devskyy.adapters.security_store import Marks, SecurityStore, SqlSecurityStore
from devskyy.core.audit import ChainReport, Checkpoint, iso
from devskyy.core.ratelimit import RateDecision
from devskyy.core.rbac import Decision, Policy
from devskyy.core.threats import ThreatPolicy
from devskyy.errors import SecurityError
from devskyy.model.resources import ResourceSet
from devskyy.model.security import (
    AuditEvent,
    EventType,
    KeyCheck,
    NewKey,
    Outcome,
    SecurityRole,
)
from devskyy.runtime.security.audit import AuditWriter
from devskyy.runtime.security.key_index import KeyIndex
from devskyy.runtime.security.keys import (
    DEFAULT_GRACE,
    DEFAULT_KEY_TTL,
    KeyService,
    check_name,
)
from devskyy.runtime.security.limits import RateLimits
from devskyy.runtime.security.rbac import LOCAL, Access
from devskyy.runtime.security.threats import ThreatGuard

log = logging.getLogger("devskyy.security")

AUDIT_LIMIT_CAP = 1000


def _engine_store(store: Engine | SecurityStore) -> SecurityStore:
    return SqlSecurityStore(store) if is_engine(store) else store


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
        audit_batch: int = 500,
        audit_max_delay: float = 1.0,
        audit_rollup_seconds: float = 60.0,
        shared_limits: bool = True,
    ) -> None:
        self.store = _engine_store(store)
        self.clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._counters = {"auth_failures": 0, "denials": 0, "rate_limited": 0, "blocked": 0}
        self.audit = AuditWriter(
            self.store,
            self.clock,
            batch=audit_batch,
            max_delay=audit_max_delay,
            rollup_seconds=audit_rollup_seconds,
        )
        self._index = KeyIndex(self.store, self.clock)
        self.access = Access(
            self.store,
            self.clock,
            roles_source=roles_source or ResourceSet,
            keys=self._index,
            audit=self.audit,
            event=self._event,
            counters=self._counters,
        )
        self.threats = ThreatGuard(
            self.store,
            self.clock,
            threat_policy or ThreatPolicy(),
            self._index,
            is_admin=self.access.is_admin,
            audit=self._event,
        )
        self.access.offence = self.threats.offence
        self.access.blocked = self.threats.blocked
        self.keys = KeyService(
            self.store,
            self.clock,
            keys=self._index,
            access=self.access,
            threats=self.threats,
            audit=self.audit,
            event=self._event,
            counters=self._counters,
            random_bytes=random_bytes,
            key_ttl=key_ttl_seconds,
        )
        # A SQL store shares each principal's rate log with every server on it
        # (``shared_limits=False`` keeps it in this process: the benchmark's baseline).
        windows = (
            SqlRateWindows(self.store.engine)
            if shared_limits and isinstance(self.store, SqlSecurityStore)
            else None
        )
        self.limits = RateLimits(
            self.clock, self.access.manifest_limit, self._event, self._counters, windows
        )
        self.audit.on_flush.append(self.keys.flush_last_used)
        self._marks: Marks | None = None

    # Change marks ----------------------------------------------------------------
    def sync(self) -> None:
        """Catch up with what any process changed (one query; call once per request).

        Each kind reloads on its own counter: key records (only those updated
        recently), blocks, or the policy (grants, or roles and bindings of a new
        revision). A flood of blocks reloads blocks, never the policy.
        """
        marks = self.store.marks()
        before = self._marks
        if marks == before:
            return
        with self._lock:
            self._marks = marks
        if before is None or marks.keys != before.keys:
            self._index.refresh()
        if before is None or marks.blocks != before.blocks:
            self.threats.reload()
        if before is None or (marks.grants, marks.revision) != (before.grants, before.revision):
            self.access.invalidate()

    def policy(self) -> Policy:
        """The compiled RBAC policy (roles, bindings, grants), as of every change committed.

        Synced first: callers deciding on their own (the dashboard) see a new Roles
        revision or grant from any process at once.
        """
        self.sync()
        return self.access.policy()

    @property
    def key_ttl(self) -> float:
        """Seconds a new key lives unless told otherwise."""
        return self.keys.key_ttl

    def key_roles(self, principal: str) -> tuple[str, ...]:
        """Roles the principal holds through keys that work now."""
        return self._index.roles(principal, self.clock.now())

    def _event(
        self,
        actor: str,
        event_type: EventType,
        resource: str,
        outcome: Outcome,
        *,
        urgent: bool = True,
        **details: Any,
    ) -> None:
        event = AuditEvent(self.clock.now(), actor, event_type, resource, outcome, details)
        self.audit.record(event, urgent=urgent)

    def flush(self) -> None:
        """Write buffered audit events and last-used times."""
        self.audit.flush()

    def close(self) -> None:
        """Flush everything; call on shutdown."""
        self.flush()

    # Roles -------------------------------------------------------------------------
    def roles(self) -> list[str]:
        """Every role name a key may carry: the built-ins and the applied ones."""
        return self.access.roles()

    # API keys ----------------------------------------------------------------------
    def generate_api_key(
        self,
        agent_name: str,
        role: SecurityRole | str = SecurityRole.SERVICE,
        *,
        expires_in: float | None = None,
        granted_by: str | None = None,
        presented_key_id: str | None = None,
    ) -> NewKey:
        """Create a key for ``agent_name`` with ``role``; the full key is returned once.

        With ``granted_by``, the granter (through ``presented_key_id`` when given) must
        hold every right the new key will carry: its role's rules and what its principal
        already gets from RoleBindings and grants.
        """
        return self.keys.generate(agent_name, role, expires_in, granted_by, presented_key_id)

    def rotate_api_key(
        self,
        key_id: str,
        grace_seconds: float = DEFAULT_GRACE,
        *,
        granted_by: str | None = None,
        presented_key_id: str | None = None,
        force: bool = False,
    ) -> NewKey:
        """Replace a key; the old one keeps working for ``grace_seconds`` (0: compromised).

        Refused (``LastAdminKey``) for the last usable admin key unless ``force``.
        """
        return self.keys.rotate(key_id, grace_seconds, granted_by, presented_key_id, force=force)

    def revoke_api_key(
        self,
        key_id: str,
        *,
        granted_by: str | None = None,
        presented_key_id: str | None = None,
        force: bool = False,
    ) -> bool:
        """Revoke a key at once; False when it was already revoked.

        Refused (``LastAdminKey``) for the last usable admin key unless ``force``.
        """
        return self.keys.revoke(key_id, granted_by, presented_key_id, force=force)

    def list_api_keys(self, principal: str | None = None) -> list[dict[str, Any]]:
        """Every key's public facts (id, principal, role, state, times); never a secret."""
        self.flush()
        return self.keys.listing(principal)

    def validate_api_key(
        self, api_key: str | NewKey, *, source: str | None = None, block_source: bool = True
    ) -> KeyCheck:
        """Who presents ``api_key``, or a reason code; failures feed threat detection.

        Failures from ``source`` (the client address) count against it, so repeated
        guessing blocks that address for attempts without a working key; with
        ``block_source=False`` they count against the string presented. Starts with
        ``sync()``: the answer reflects every change committed before it.
        """
        self.sync()
        return self.keys.validate(api_key, source, block_source=block_source)

    # Threat detection --------------------------------------------------------------
    def unblock(self, principal: str, *, granted_by: str | None = None) -> list[str]:
        """Lift blocks on a subject (``key:ID``, ``source:ADDR``), a key id, or a principal."""
        check_name(principal, "principal")
        if granted_by is not None:
            self.access.require(granted_by, "admin", "security", None)
        return self.threats.lift(principal, granted_by or LOCAL)

    # Authorization -----------------------------------------------------------------
    def authorize(
        self,
        agent_name: str,
        resource: str,
        permission: str,
        *,
        presented_key_id: str | None = None,
    ) -> Decision:
        """The RBAC decision, audited; denials count against a presented key id.

        With ``presented_key_id`` only that key's role counts, besides bindings and
        grants (the request's ``validate_api_key`` synced already). Without it, the
        roles of all the principal's usable keys count (the guide's call by name), and
        the manager syncs first.
        """
        if presented_key_id is None:
            self.sync()
        return self.access.authorize(
            agent_name, resource, permission, presented_key_id=presented_key_id
        )

    def explain(self, agent_name: str, resource: str, permission: str) -> Decision:
        """The RBAC decision alone: not audited, no threat counting (``can-i``)."""
        self.sync()
        return self.access.explain(agent_name, resource, permission)

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

    def may_read(self, principal: str, key_id: str, resources: list[str]) -> set[str]:
        """Which of ``resources`` a request made with ``key_id`` may read (not audited).

        Aggregated views filter with this, so that they show exactly what the caller
        could read one by one.
        """
        return {r for r in resources if self.access.may(principal, key_id, "read", r)}

    def grant_resource_access(
        self,
        resource: str,
        agent_name: str,
        permission: str = "read",
        *,
        granted_by: str | None = None,
        presented_key_id: str | None = None,
    ) -> bool:
        """Grant ``permission`` on ``resource``; False when the grant already existed."""
        check_name(agent_name, "principal")
        check_name(resource, "resource")
        return self.access.grant(resource, agent_name, permission, granted_by, presented_key_id)

    def revoke_resource_access(
        self,
        resource: str,
        agent_name: str,
        permission: str = "read",
        *,
        granted_by: str | None = None,
        presented_key_id: str | None = None,
    ) -> bool:
        """Remove a runtime grant; False when there was none."""
        return self.access.revoke(resource, agent_name, permission, granted_by, presented_key_id)

    # Rate limiting -----------------------------------------------------------------
    def manifest_rate_limit(self, principal: str) -> tuple[int, float] | None:
        """The ``rateLimit`` of the principal's Agent manifest, if it sets one."""
        return self.access.manifest_limit(principal)

    def rate_limit(
        self,
        agent_name: str,
        limit: int | None = None,
        window_seconds: float | None = None,
        *,
        default: tuple[int, float] | None = None,
    ) -> RateDecision:
        """Count one request: explicit limits, else the manifest's, else ``default``."""
        return self.limits.hit(agent_name, limit, window_seconds, default=default)

    def check_rate_limit(
        self, agent_name: str, limit: int | None = None, window_seconds: float | None = None
    ) -> bool:
        """The guide's call: True when the request is within the limit."""
        return self.rate_limit(agent_name, limit, window_seconds).allowed

    # Audit, summary ----------------------------------------------------------------
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

    def verify_audit_log(self, checkpoints: tuple[Checkpoint, ...] = ()) -> ChainReport:
        """Check the hash chain, the given checkpoints, and one event per revision."""
        return self.audit.verify(checkpoints)

    def audit_checkpoint(self) -> Checkpoint:
        """``{seq, hash, at}`` of the chain's head now, to keep outside the database."""
        return self.audit.checkpoint()

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
        self.access.invalidate()

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
