"""Signing in to the dashboard: an API key becomes a server-side session cookie.

``UiAuth.sign_in`` checks the key exactly as the API's ``Guard`` does (the security
manager's ``validate_api_key`` with the client address for threat detection, so failures
are audited and repeated guessing gets the source blocked; then the principal's rate
limit) and records a session (``adapters.ui_sessions``: only the id's hash is stored).

The cookie is ``HttpOnly`` (scripts cannot read it), ``SameSite=Strict`` (no other site
can make the browser send it), ``Path=/ui``, with ``Max-Age`` = the session's life, and
``Secure`` when the request came over TLS: the scheme uvicorn reports, which is ``https``
behind a proxy only when that proxy is trusted (uvicorn's ``forwarded_allow_ips``).

The login form itself is protected against login CSRF (another site signing the browser in
with the attacker's key): ``GET /ui/login`` sets a random token in a short-lived cookie
(``HttpOnly``, ``SameSite=Strict``, ``Path=/ui/login``) and in a hidden field, and the POST
must present both, equal (a double-submit token; a cross-site POST carries no such cookie).

``UiAuth.viewer`` turns a request's cookie back into a ``Viewer``: an unknown, forged or
expired cookie, or a key revoked or expired since sign-in, gives None (the routes send
the browser to the login page). Every signed-in request counts against the principal's
rate limit like an API request.
"""

from __future__ import annotations

import hmac
import math
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import Response

from devskyy.adapters.ui_sessions import (
    SqlUiSessions,
    UiSession,
    UiSessionStore,
    csrf_matches,
    csrf_token,
    new_session_id,
)
from devskyy.api.deps import ApiError, charge_rate_limit
from devskyy.api.ui.access import Viewer
from devskyy.model.security import KeyReason
from devskyy.runtime.security.key_index import usable

if TYPE_CHECKING:
    from devskyy.api.context import ApiContext

COOKIE = "devskyy_session"
LOGIN_COOKIE = "devskyy_login"
LOGIN_SECONDS = 3600
"""How long a sign-in form stays usable."""
SESSION_SECONDS = 8 * 3600.0
"""A session's life (a working day); never past the key's own expiry."""


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: a session id, or the status and message to show."""

    session_id: str | None
    status: int
    message: str
    expires_at: float = 0.0
    retry_after: int | None = None


@dataclass(frozen=True)
class Limited:
    """A signed-in request over the principal's rate limit."""

    retry_after: int
    headers: dict[str, str]


class UiAuth:
    """Sessions for one app (the store is the API context's)."""

    def __init__(self, ctx: ApiContext, store: UiSessionStore | None = None) -> None:
        self.ctx = ctx
        self.store: UiSessionStore = store or SqlUiSessions(ctx.system.engine)

    def _source(self, request: Request) -> str | None:
        if not self.ctx.settings.block_sources:
            return None
        return request.client.host if request.client else None

    def sign_in(self, request: Request, api_key: str) -> SignIn:
        """Validate ``api_key`` like the API and open a session for it."""
        ctx = self.ctx
        key = api_key.strip()
        if not key:
            ctx.metrics.auth_failures.labels("missing").inc()
            return SignIn(None, 401, "Enter an API key.")
        check = ctx.security.validate_api_key(key, source=self._source(request))
        if not check.valid:
            reason = check.reason.value if check.reason else "unknown"
            ctx.metrics.auth_failures.labels(reason).inc()
            if check.reason is KeyReason.BLOCKED:
                return SignIn(None, 403, f"Blocked: {check.detail}. Ask an administrator.")
            return SignIn(None, 401, f"Sign-in refused: {reason} ({check.detail}).")
        assert check.principal is not None
        assert check.key_id is not None
        decision = ctx.rate_limit(check.principal)
        if not decision.allowed:
            ctx.metrics.rate_limited.inc()
            wait = max(1, math.ceil(decision.retry_after))
            return SignIn(None, 429, f"Too many requests; try again in {wait} s.", retry_after=wait)
        now = ctx.system.clock.now()
        expires = now + SESSION_SECONDS
        if check.expires is not None:
            expires = min(expires, check.expires)
        session_id = new_session_id()
        self.store.purge(now)  # sessions never signed out would otherwise stay forever
        self.store.create(
            session_id, UiSession(check.key_id, check.principal, check.role or "", now, expires)
        )
        return SignIn(session_id, 303, "signed in", expires_at=expires)

    def _key_usable(self, key_id: str, now: float) -> bool:
        record = self.ctx.security.store.get_key(key_id)
        return record is not None and usable(record, now)

    def viewer(self, request: Request) -> Viewer | Limited | None:
        """The signed-in viewer, ``Limited`` over the rate limit, or None (sign in again)."""
        session_id = request.cookies.get(COOKIE)
        if not session_id or len(session_id) > 128:
            return None
        now = self.ctx.system.clock.now()
        session = self.store.get(session_id, now)
        if session is None:
            return None
        if not self._key_usable(session.key_id, now):
            # Revoked or expired since sign-in: the session ends with the key.
            self.store.delete(session_id)
            return None
        try:  # the API's charge: principal and RateLimit-* headers to the request's state
            charge_rate_limit(self.ctx, request, session.principal)
        except ApiError as exc:
            wait = int(exc.headers["Retry-After"])
            return Limited(wait, {"Retry-After": str(wait)})
        return Viewer(
            session.principal,
            session.role,
            session.key_id,
            csrf_token(session_id),
            self.ctx.security.policy(),  # syncs: the page's decision and its elements agree
        )

    def csrf_ok(self, request: Request, presented: str) -> bool:
        """Whether a form's token is this session's CSRF token."""
        session_id = request.cookies.get(COOKIE)
        return bool(session_id) and bool(presented) and csrf_matches(session_id or "", presented)

    def sign_out(self, request: Request) -> bool:
        """End the request's session in the store (False when there was none)."""
        session_id = request.cookies.get(COOKIE)
        return bool(session_id) and self.store.delete(session_id or "")


def secure_request(request: Request) -> bool:
    """Whether the request came over TLS (uvicorn applies trusted forwarded headers)."""
    return request.url.scheme == "https"


def set_session_cookie(
    response: Response, request: Request, session_id: str, max_age: float
) -> None:
    """Attach the session cookie with the attributes of the module docstring."""
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=max(1, int(max_age)),
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=secure_request(request),
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    """Tell the browser to forget the session cookie."""
    response.delete_cookie(
        COOKIE, path="/ui", httponly=True, samesite="strict", secure=secure_request(request)
    )


def new_login_token() -> str:
    """A fresh token for one sign-in form."""
    return secrets.token_urlsafe(32)


def set_login_cookie(response: Response, request: Request, token: str) -> None:
    """The login form's half of the double-submit token (see the module docstring)."""
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=LOGIN_SECONDS,
        path="/ui/login",
        httponly=True,
        samesite="strict",
        secure=secure_request(request),
    )


def login_token_ok(request: Request, presented: str) -> bool:
    """Whether the form's token matches the cookie set with the form (constant time)."""
    expected = request.cookies.get(LOGIN_COOKIE, "")
    return bool(expected) and hmac.compare_digest(expected.encode(), presented.encode())
