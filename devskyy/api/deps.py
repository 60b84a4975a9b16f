"""Authentication as a dependency; authorization as the table's pure decision, audited.

``Guard(ctx)`` is the FastAPI dependency of every protected route. In order:

1. the key, from ``Authorization: Bearer …`` or ``X-API-Key`` (401 ``missing`` without);
2. ``SecurityManager.validate_api_key``: 401 with the reason code (``malformed``,
   ``unknown``, ``expired``, ``revoked``), or 403 ``blocked`` while blocked;
3. the rate limit of the principal (the Agent manifest's ``rateLimit`` for an agent,
   else the settings' or the manager's default): 429 with ``Retry-After`` and
   ``RateLimit-Limit``/``-Remaining``/``-Reset``;
4. RBAC: the route's (permission, resource) from ``permissions.TABLE``, filled from
   the path, decided by ``SecurityManager.authorize`` (which audits it) for the key
   presented: 403 with the reason. A resource naming a body field is decided by the
   handler through ``Caller.require`` once the body is parsed.

The key itself never appears in a response, a log line or the audit log.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import Request

from devskyy.api.metrics import ApiMetrics
from devskyy.api.permissions import TABLE, Need
from devskyy.api.settings import ApiSettings
from devskyy.core.ratelimit import RateDecision
from devskyy.model.security import KeyReason
from devskyy.runtime.security import SecurityManager


class ApiContext(Protocol):
    """What authentication needs of the app's context (``api.context.ApiContext``).

    A Protocol, so that this module and the context do not import each other.
    """

    settings: ApiSettings
    security: SecurityManager
    metrics: ApiMetrics

    def rate_limit(self, principal: str) -> RateDecision: ...

    def decide(self, caller: Caller, need: Need) -> None: ...


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class ApiError(Exception):
    """An answer other than 2xx: status, reason code, detail, extra headers."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers or {}


@dataclass
class Caller:
    """The authenticated principal of a request and the key id it presented."""

    principal: str
    role: str
    key_id: str
    ctx: ApiContext = field(repr=False)
    pending: Need | None = None

    def require(self, values: dict[str, Any]) -> None:
        """Decide the route's need whose resource names body fields (403 when denied)."""
        if self.pending is None:
            return
        need, self.pending = self.pending.fill(values), None
        self.ctx.decide(self, need)


def rate_headers(decision: RateDecision) -> dict[str, str]:
    """The IETF draft ``RateLimit-*`` headers (whole seconds, rounded up)."""
    return {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(math.ceil(decision.reset_after)),
    }


def charge_rate_limit(ctx: ApiContext, request: Request, principal: str) -> None:
    """Count a request of ``principal`` against its rate limit: 429 when over.

    The principal and the ``RateLimit-*`` headers go to the request's state, where
    the app's middleware adds them to the answer (and the access log names the
    principal) whether the request is allowed or not.
    """
    state = request.scope.setdefault("state", {})
    state["principal"] = principal
    decision = ctx.rate_limit(principal)
    state["ratelimit"] = rate_headers(decision)
    if not decision.allowed:
        ctx.metrics.rate_limited.inc()
        raise ApiError(
            429,
            "rate_limited",
            {"reason": "rate_limited", "retry_after": math.ceil(decision.retry_after)},
            {"Retry-After": str(max(1, math.ceil(decision.retry_after)))},
        )


def presented_key(request: Request) -> str | None:
    """The key of ``Authorization: Bearer`` or ``X-API-Key`` (first wins)."""
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return ""
    key = request.headers.get("x-api-key")
    return key.strip() if key is not None else None


class Guard:
    """The authentication / rate limit / RBAC dependency (see the module docstring)."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def __call__(self, request: Request) -> Caller:
        ctx = self.ctx
        key = presented_key(request)
        if not key:
            reason = "missing" if key is None else KeyReason.MALFORMED.value
            ctx.metrics.auth_failures.labels(reason).inc()
            raise ApiError(
                401,
                "unauthenticated",
                {"reason": reason, "message": "send Authorization: Bearer KEY or X-API-Key"},
                {"WWW-Authenticate": "Bearer"},
            )
        client = request.client.host if request.client else None
        check = ctx.security.validate_api_key(
            key, source=client, block_source=ctx.settings.block_sources
        )
        if not check.valid:
            reason = check.reason.value if check.reason else "unknown"
            ctx.metrics.auth_failures.labels(reason).inc()
            if check.reason is KeyReason.BLOCKED:
                raise ApiError(403, "blocked", {"reason": "blocked", "message": check.detail})
            raise ApiError(
                401,
                "unauthenticated",
                {"reason": reason, "message": check.detail},
                {"WWW-Authenticate": "Bearer"},
            )
        assert check.principal is not None
        assert check.key_id is not None
        caller = Caller(check.principal, check.role or "", check.key_id, ctx)
        charge_rate_limit(ctx, request, caller.principal)
        route = request.scope.get("route")
        need = TABLE[(request.method, getattr(route, "path", request.url.path))]
        if all(p in request.path_params for p in _PLACEHOLDER.findall(need.resource)):
            ctx.decide(caller, need.fill(request.path_params))
        else:
            caller.pending = need
        return caller
