"""RBAC at run time: the compiled policy, audited decisions, runtime grants, no escalation.

The decisions are ``devskyy.core.rbac``; this class keeps one compiled ``Policy``
(roles and bindings from the applied manifests, grants from the security store) and
memoized decisions. Both are dropped by ``invalidate()``, which the security manager
calls when the store's change counter or revision number moved (checked once per
request) or after a local grant change: no time-based staleness.

Rights of a key's holder are what a request made with that key gets: the key's role,
plus the RoleBindings and grants of its principal. The escalation checks compare those
(``key_rights``) with what the granter holds through the key it presented.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from devskyy.adapters.clock import Clock
from devskyy.adapters.security_store import SecurityStore
from devskyy.core.ratelimit import DEFAULT_LIMIT, DEFAULT_WINDOW
from devskyy.core.rbac import PERMISSIONS, Decision, Policy, can_grant
from devskyy.errors import NotFound, PermissionDenied, SecurityError
from devskyy.model.resources import ResourceSet
from devskyy.model.security import (
    ApiKeyRecord,
    AuditEvent,
    EventType,
    Grant,
    Outcome,
    SecurityRole,
)
from devskyy.runtime.security.audit import AuditWriter
from devskyy.runtime.security.key_index import KeyIndex, usable

Audit = Callable[..., None]
Offence = Callable[[str, ApiKeyRecord], None]
Blocked = Callable[[str], object]
LOCAL = "local"


class Access:
    """The policy, audited decisions and grants of one security manager."""

    def __init__(
        self,
        store: SecurityStore,
        clock: Clock,
        *,
        roles_source: Callable[[], ResourceSet],
        keys: KeyIndex,
        audit: AuditWriter,
        event: Audit,
        counters: dict[str, int],
    ) -> None:
        self._store = store
        self._clock = clock
        self._roles_source = roles_source
        self._keys = keys
        self._audit = audit
        self._event = event
        self._counters = counters
        self._lock = threading.RLock()
        self._policy: Policy | None = None
        self.rate_limits: dict[str, tuple[int, float]] = {}
        self._role_names: set[str] = set()
        self._memo: dict[tuple[str, str, str, tuple[str, ...]], Decision] = {}
        self.offence: Offence = lambda _subject, _record: None
        self.blocked: Blocked = lambda _subject: None

    def invalidate(self) -> None:
        """Drop the compiled policy and memo (roles, bindings or grants changed)."""
        with self._lock:
            self._policy = None
            self._memo = {}

    def forget_decisions(self) -> None:
        """Drop memoized decisions (a key's role or state changed)."""
        with self._lock:
            self._memo = {}

    def policy(self) -> Policy:
        """The compiled RBAC policy (roles, bindings, grants), rebuilt when invalidated."""
        policy = self._policy
        if policy is not None:
            return policy
        live = self._roles_source()
        policy = Policy(live.roles, live.role_bindings, self._store.grants())
        with self._lock:
            self._policy = policy
            self._role_names = {r.name for r in live.roles}
            self.rate_limits = {
                a.name: (a.spec.rate_limit.requests, float(a.spec.rate_limit.window_seconds))
                for a in live.agents
                if a.spec.rate_limit is not None
            }
            self._memo = {}
        return policy

    def manifest_limit(self, principal: str) -> tuple[int, float] | None:
        """The ``rateLimit`` of the principal's Agent manifest, if it sets one."""
        self.policy()
        return self.rate_limits.get(principal)

    def default_limit(self, principal: str) -> tuple[int, float]:
        """The manifest's limit, else the manager's default (100 per 60 s)."""
        return self.manifest_limit(principal) or (DEFAULT_LIMIT, DEFAULT_WINDOW)

    # Roles ---------------------------------------------------------------------
    def roles(self) -> list[str]:
        """Every role name a key may carry: the built-ins and the applied ones."""
        self.policy()
        return sorted({r.value for r in SecurityRole} | self._role_names)

    def role_name(self, role: SecurityRole | str) -> str:
        """The role's name, checked to exist."""
        name = role.value if isinstance(role, SecurityRole) else str(role).lower()
        if name not in self.roles():
            raise NotFound(f"role {name!r} does not exist (known: {', '.join(self.roles())})")
        return name

    def is_admin(self, record: ApiKeyRecord) -> bool:
        """Whether a request made with ``record`` may do anything."""
        return self.policy().decide(record.principal, "admin", "*", (record.role,)).allowed

    # Holdings --------------------------------------------------------------------
    def key_rights(self, principal: str, role: str) -> list[tuple[str, str]]:
        """What a request made with a ``role`` key of ``principal`` may do.

        The role's rules, plus the principal's RoleBindings (and their extra resources)
        and runtime grants: a guest key for ``scanner`` carries scanner's bindings.
        """
        policy = self.policy()
        return [*policy.role_holdings(role), *policy.holdings(principal)]

    def holder_rights(self, principal: str, key_id: str | None) -> list[tuple[str, str]]:
        """What ``principal`` holds now: through the presented key only, when one is named."""
        now = self._clock.now()
        if key_id is None:
            return self.policy().holdings(principal, self._keys.roles(principal, now))
        record = self._keys.get(key_id)
        if record is None or record.principal != principal or not usable(record, now):
            return self.policy().holdings(principal)
        return self.key_rights(principal, record.role)

    def require(self, principal: str, permission: str, resource: str, key_id: str | None) -> None:
        """Raise ``PermissionDenied`` unless ``principal`` may (audited)."""
        decision = self.authorize(principal, resource, permission, presented_key_id=key_id)
        if not decision.allowed:
            raise PermissionDenied(decision.reason)

    def no_escalation(
        self, granter: str, key_id: str | None, requested: list[tuple[str, str]], what: str
    ) -> None:
        """Refuse (audited, 403) unless the granter holds everything ``requested``."""
        decision = can_grant(self.holder_rights(granter, key_id), requested)
        if not decision.allowed:
            self._counters["denials"] += 1
            reason = f"{decision.reason.replace('granter', granter, 1)} ({what})"
            self._event(granter, EventType.PERMISSION_DENIED, "keys", Outcome.DENIED, reason=reason)
            raise PermissionDenied(reason)

    # Decisions -------------------------------------------------------------------
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
            if self.blocked(f"key:{presented_key_id}"):
                return Decision(False, f"key {presented_key_id} is blocked")
            record = self._keys.get(presented_key_id)
        policy = self.policy()  # first: a rebuilt policy empties the memo
        now = self._clock.now()
        if presented_key_id is None:
            roles = self._keys.roles(agent_name, now)
        elif record is not None and record.principal == agent_name and usable(record, now):
            roles = (record.role,)
        else:
            roles = ()
        decision = self.decide(policy, agent_name, permission, resource, roles)
        # The audit writer is called directly (not through the event callback): this is
        # the per-request hot path.
        if decision.allowed:
            self._audit.count(
                now,
                agent_name,
                EventType.PERMISSION_ALLOWED,
                resource,
                {"permission": permission, "rule": decision.matched_rule},
            )
            return decision
        self._counters["denials"] += 1
        self._audit.record(
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
            self.offence(f"key:{presented_key_id}", record)
        return decision

    def decide(
        self, policy: Policy, principal: str, permission: str, resource: str, roles: tuple[str, ...]
    ) -> Decision:
        """``policy.decide`` memoized (the memo goes with the policy)."""
        memo_key = (principal, permission, resource, roles)
        decision = self._memo.get(memo_key)
        if decision is None:
            decision = policy.decide(principal, permission, resource, roles)
            if len(self._memo) > 100_000:
                self._memo.clear()
            self._memo[memo_key] = decision
        return decision

    def may(self, principal: str, key_id: str, permission: str, resource: str) -> bool:
        """The decision ``authorize`` would give for the presented key, without auditing."""
        if self.blocked(f"key:{key_id}"):
            return False
        record = self._keys.get(key_id)
        now = self._clock.now()
        ok = record is not None and record.principal == principal and usable(record, now)
        roles = (record.role,) if ok and record is not None else ()
        return self.decide(self.policy(), principal, permission, resource, roles).allowed

    def explain(self, agent_name: str, resource: str, permission: str) -> Decision:
        """The RBAC decision alone: not audited, no threat counting (``can-i``)."""
        roles = self._keys.roles(agent_name, self._clock.now())
        return self.policy().decide(agent_name, permission, resource, roles)

    # Grants ----------------------------------------------------------------------
    def grant(
        self,
        resource: str,
        agent_name: str,
        permission: str,
        granted_by: str | None,
        key_id: str | None,
    ) -> bool:
        """Grant ``permission`` on ``resource``; False when the grant already existed."""
        if permission not in PERMISSIONS:
            raise SecurityError(f"unknown permission {permission!r} (use {', '.join(PERMISSIONS)})")
        if granted_by is not None:
            self.no_escalation(granted_by, key_id, [(permission, resource)], "to grant it")
        grant = Grant(agent_name, resource, permission, granted_by or LOCAL, self._clock.now())
        added = self._store.add_grant(grant)
        self.invalidate()
        if added:
            self._grant_event(granted_by, EventType.GRANT_ADDED, resource, agent_name, permission)
        return added

    def revoke(
        self,
        resource: str,
        agent_name: str,
        permission: str,
        granted_by: str | None,
        key_id: str | None,
    ) -> bool:
        """Remove a runtime grant; False when there was none."""
        if granted_by is not None:
            self.no_escalation(granted_by, key_id, [(permission, resource)], "to revoke it")
        removed = self._store.remove_grant(agent_name, resource, permission)
        self.invalidate()
        if removed:
            self._grant_event(granted_by, EventType.GRANT_REVOKED, resource, agent_name, permission)
        return removed

    def _grant_event(
        self, actor: str | None, kind: EventType, resource: str, principal: str, permission: str
    ) -> None:
        details: dict[str, Any] = {"principal": principal, "permission": permission}
        self._event(actor or LOCAL, kind, resource, Outcome.SUCCESS, **details)
