"""Security endpoints: API keys, the audit log, the summary, permission checks.

Key generation passes the caller as ``granted_by``: the manager refuses a role that
would give more than the caller holds (403). The new key is in this one response only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query

from devskyy.api.context import ApiContext
from devskyy.api.deps import Caller
from devskyy.api.models import (
    ERRORS,
    AuditLog,
    CheckPermissionRequest,
    GenerateKeyRequest,
    KeyCheckView,
    NewKeyView,
    PermissionView,
    RevokeView,
    SecuritySummary,
    ValidateKeyRequest,
)
from devskyy.core.audit import iso


def build(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/security", tags=["security"], responses=ERRORS)
    guard = Depends(ctx.guard)
    sm = ctx.security

    @router.post("/api-key/generate", response_model=NewKeyView, status_code=201)
    async def generate(body: GenerateKeyRequest, caller: Caller = guard) -> dict[str, Any]:
        """Create a key for ``agent_name`` with ``role`` (never above the caller's rights)."""
        expires = None if body.expires_in_days is None else body.expires_in_days * 86_400.0
        new = sm.generate_api_key(
            body.agent_name,
            body.role,
            expires_in=expires,
            granted_by=caller.principal,
            presented_key_id=caller.key_id,
        )
        return {
            "api_key": new.key,
            "key_id": new.key_id,
            "agent_name": new.principal,
            "role": new.role,
            "expires": iso(new.expires),
        }

    @router.post("/api-key/validate", response_model=KeyCheckView)
    async def validate(body: ValidateKeyRequest, caller: Caller = guard) -> dict[str, Any]:
        """Who a key belongs to, or why it does not work (never echoes the key)."""
        return sm.validate_api_key(body.api_key).to_dict()

    @router.delete("/api-key/{key_id}", response_model=RevokeView)
    async def revoke(
        key_id: str = Path(min_length=1, max_length=64), caller: Caller = guard
    ) -> dict[str, Any]:
        """Revoke a key at once."""
        revoked = sm.revoke_api_key(
            key_id, granted_by=caller.principal, presented_key_id=caller.key_id
        )
        return {"key_id": key_id, "revoked": revoked}

    @router.get("/audit-log", response_model=AuditLog)
    async def audit_log(
        caller: Caller = guard,
        agent_name: str | None = Query(None, max_length=253),
        event_type: str | None = Query(None, max_length=63),
        limit: int = Query(100, ge=1, le=1000),
    ) -> dict[str, Any]:
        """Recent audit events, oldest first."""
        events = sm.get_audit_log(agent_name, event_type, limit=limit)
        return {"events": events, "count": len(events)}

    @router.get("/summary", response_model=SecuritySummary)
    async def summary(caller: Caller = guard) -> dict[str, Any]:
        """Keys by state, principals, roles, grants, blocks, audit event count."""
        return sm.get_security_summary()

    @router.post("/check-permission", response_model=PermissionView)
    async def check_permission(
        body: CheckPermissionRequest, caller: Caller = guard
    ) -> dict[str, Any]:
        """Whether ``agent_name`` may ``permission`` on ``resource`` (not counted as a threat)."""
        decision = sm.explain(body.agent_name, body.resource, body.permission)
        return {**body.model_dump(), "allowed": decision.allowed, "reason": decision.reason}

    return router
