"""Dashboard sign-in sessions in the store: one row per session, keyed by a hash.

Signing in to ``/ui`` with an API key creates a session: a random id goes to the browser
in a cookie, and the store keeps only its SHA-256 (``ui_sessions.id_hash``) with the key
id, principal and role it stands for and when it expires. A stolen database therefore
holds no usable cookie, and several servers on one store (PostgreSQL) share sessions.
Signing out deletes the row, so the cookie stops working everywhere at once.

The CSRF token of a session is derived from its id with HMAC (never stored): only the
holder of the cookie can compute it, and the forms carry it back.

``SqlUiSessions`` and ``MemoryUiSessions`` implement one ``UiSessionStore`` Protocol;
one contract test runs over both. Time comes in as ``now`` (epoch seconds).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from typing import Protocol

from sqlalchemy import Column, Double, Engine, String, Table, delete, insert, select

from devskyy.adapters.db import metadata

ui_sessions_table = Table(
    "ui_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("key_id", String(64), nullable=False, index=True),
    Column("principal", String(255), nullable=False),
    Column("role", String(255), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False, index=True),
)

_CSRF_LABEL = b"devskyy-ui-csrf-v1"


def session_hash(session_id: str) -> str:
    """What the store keeps of a session id."""
    return hashlib.sha256(session_id.encode("utf-8", "replace")).hexdigest()


def csrf_token(session_id: str) -> str:
    """The CSRF token of a session (HMAC of a fixed label under the session id)."""
    return hmac.new(session_id.encode("utf-8", "replace"), _CSRF_LABEL, "sha256").hexdigest()


def csrf_matches(session_id: str, presented: str) -> bool:
    """Whether ``presented`` is the session's CSRF token (constant-time)."""
    return hmac.compare_digest(csrf_token(session_id), presented)


def new_session_id() -> str:
    """A fresh unguessable session id (256 random bits, URL-safe)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class UiSession:
    """Who a session stands for and until when (epoch seconds)."""

    key_id: str
    principal: str
    role: str
    created_at: float
    expires_at: float

    def expired(self, now: float) -> bool:
        """True from ``expires_at`` on."""
        return now >= self.expires_at


class UiSessionStore(Protocol):
    """Where sessions live. Every method takes the session id, never its hash."""

    def create(self, session_id: str, session: UiSession) -> None:
        """Record a new session."""

    def get(self, session_id: str, now: float) -> UiSession | None:
        """The session, or None when unknown or expired (an expired one is deleted)."""

    def delete(self, session_id: str) -> bool:
        """End a session; False when there was none."""

    def purge(self, now: float) -> int:
        """Delete every expired session; returns how many."""


class SqlUiSessions:
    """Sessions in the SQL store (the ``ui_sessions`` table)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, session_id: str, session: UiSession) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(ui_sessions_table).values(
                    id_hash=session_hash(session_id),
                    key_id=session.key_id,
                    principal=session.principal,
                    role=session.role,
                    created_at=session.created_at,
                    expires_at=session.expires_at,
                )
            )

    def get(self, session_id: str, now: float) -> UiSession | None:
        table = ui_sessions_table
        with self.engine.connect() as conn:
            row = conn.execute(
                select(table).where(table.c.id_hash == session_hash(session_id))
            ).first()
        if row is None:
            return None
        found = UiSession(row.key_id, row.principal, row.role, row.created_at, row.expires_at)
        if found.expired(now):
            self.delete(session_id)
            return None
        return found

    def delete(self, session_id: str) -> bool:
        table = ui_sessions_table
        with self.engine.begin() as conn:
            result = conn.execute(delete(table).where(table.c.id_hash == session_hash(session_id)))
        return bool(result.rowcount)

    def purge(self, now: float) -> int:
        table = ui_sessions_table
        with self.engine.begin() as conn:
            result = conn.execute(delete(table).where(table.c.expires_at <= now))
        return int(result.rowcount or 0)


class MemoryUiSessions:
    """The in-memory twin (tests, and a place to read the Protocol's meaning)."""

    def __init__(self) -> None:
        self.rows: dict[str, UiSession] = {}

    def create(self, session_id: str, session: UiSession) -> None:
        self.rows[session_hash(session_id)] = replace(session)

    def get(self, session_id: str, now: float) -> UiSession | None:
        found = self.rows.get(session_hash(session_id))
        if found is None:
            return None
        if found.expired(now):
            self.delete(session_id)
            return None
        return found

    def delete(self, session_id: str) -> bool:
        return self.rows.pop(session_hash(session_id), None) is not None

    def purge(self, now: float) -> int:
        gone = [h for h, s in self.rows.items() if s.expired(now)]
        for h in gone:
            del self.rows[h]
        return len(gone)
