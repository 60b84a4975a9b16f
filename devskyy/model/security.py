"""Frozen records of the security manager: API keys, grants, audit events, blocks.

These are the values the security store reads and writes and the runtime passes
around. None of them ever holds a secret: an API key is stored as the SHA-256 hash of
its secret, and audit ``details`` are checked to carry no key material.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    """The fixed list of audit event types."""

    KEY_CREATED = "key.created"
    KEY_VALIDATED = "key.validated"
    KEY_FAILED = "key.failed"
    KEY_ROTATED = "key.rotated"
    KEY_REVOKED = "key.revoked"
    PERMISSION_ALLOWED = "permission.allowed"
    PERMISSION_DENIED = "permission.denied"
    GRANT_ADDED = "grant.added"
    GRANT_REVOKED = "grant.revoked"
    RATE_LIMITED = "rate.limited"
    BLOCKED = "threat.blocked"
    BLOCK_REFUSED = "threat.block_refused"
    UNBLOCKED = "threat.unblocked"
    MANIFESTS_APPLIED = "manifests.applied"
    DAEMON_TAKEOVER = "daemon.takeover"  # a standby took the lease of a dead or silent daemon
    WEBHOOK_REJECTED = "webhook.rejected"  # a push webhook with a bad or missing signature


class Outcome(StrEnum):
    """How a security event ended."""

    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"


@dataclass(frozen=True)
class ApiKeyRecord:
    """One stored API key: never the secret, only its hash.

    ``grace_until`` is set on the old key when it is rotated: the key keeps working
    until then (and no longer than its own expiry). ``rotated_from`` names the key a
    rotation replaced. ``updated`` is when the record last changed (not counting
    ``last_used``), so that caches can fetch only what changed.
    """

    key_id: str
    principal: str
    role: str
    secret_hash: str
    created: float
    expires: float
    revoked: float | None = None
    rotated_from: str | None = None
    grace_until: float | None = None
    last_used: float | None = None
    updated: float = 0.0

    def state(self, now: float) -> str:
        """``active``, ``grace`` (rotated, still working), ``expired`` or ``revoked``."""
        if self.revoked is not None and self.revoked <= now:
            return "revoked"
        if self.grace_until is not None:
            return "grace" if now < min(self.grace_until, self.expires) else "rotated"
        return "active" if now < self.expires else "expired"


@dataclass(frozen=True)
class Grant:
    """A runtime grant: ``permission`` on ``resource`` (a pattern) for ``principal``."""

    principal: str
    resource: str
    permission: str
    granted_by: str = "local"
    created: float = 0.0


@dataclass(frozen=True)
class AuditEvent:
    """An event to be appended to the audit log (before it is chained)."""

    time: float
    actor: str
    event_type: EventType
    resource: str
    outcome: Outcome
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecord:
    """A chained audit event as stored: ``seq`` counts from 1, ``hash`` covers the rest."""

    seq: int
    time: float
    actor: str
    event_type: str
    resource: str
    outcome: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class BlockRecord:
    """A threat-detection block on a presented subject (``key:ID`` or ``source:ADDR``)."""

    subject: str
    until: float
    offences: int
    reason: str = ""
    principal: str | None = None


class SecurityRole(StrEnum):
    """The guide's five built-in roles (their rules ship in ``manifests/roles/``)."""

    ADMIN = "admin"
    OPERATOR = "operator"
    ANALYST = "analyst"
    SERVICE = "service"
    GUEST = "guest"


class KeyReason(StrEnum):
    """Why a presented key did not authenticate."""

    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"
    BLOCKED = "blocked"
    MALFORMED = "malformed"


@dataclass(frozen=True)
class NewKey:
    """A key just created: ``key`` is shown once and never stored or logged."""

    key: str
    key_id: str
    principal: str
    role: str
    expires: float

    def __repr__(self) -> str:
        return f"NewKey(key_id={self.key_id!r}, principal={self.principal!r}, role={self.role!r})"

    __str__ = __repr__


@dataclass(frozen=True)
class KeyCheck:
    """The result of ``validate_api_key``: who, or why not (never the key itself)."""

    valid: bool
    principal: str | None = None
    role: str | None = None
    key_id: str | None = None
    expires: float | None = None
    reason: KeyReason | None = None
    detail: str = ""

    def __bool__(self) -> bool:
        return self.valid

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (times as UTC ISO-8601)."""
        return {
            "valid": self.valid,
            "principal": self.principal,
            "role": self.role,
            "key_id": self.key_id,
            "expires": None
            if self.expires is None
            else datetime.fromtimestamp(self.expires, UTC).isoformat(timespec="microseconds"),
            "reason": None if self.reason is None else self.reason.value,
            "detail": self.detail,
        }
