"""``POST /api/gitops/webhook``: a git host's push wakes the watch daemon in pull mode.

Authenticated by the request's signature with a shared secret (``core.webhook``), not by
an API key (``permissions.SIGNED``; the OpenAPI document names the scheme). In order:

1. no daemon in pull mode in this process (plain ``devskyy serve``, or ``watch`` of a local
   folder): 409 ``no_pull_daemon``; pull mode without a secret: 409 ``no_webhook_secret``;
2. the rate limit of the client address (principal ``webhook:<address>``): 429;
3. the signature: 401 ``bad_signature`` / ``missing_signature``, counted and audited
   (``webhook.rejected``, with the client address and host; never the signature);
4. a push to the followed branch: 202 at once, and the daemon gets a hint that is
   debounced and coalesced with file events and the poll (a burst of pushes is one
   fetch → validate → plan → apply pass); a ping or another branch or event: 200 ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from devskyy.api.context import ApiContext
from devskyy.api.deps import ApiError, charge_rate_limit
from devskyy.core.webhook import classify, verify
from devskyy.model.security import AuditEvent, EventType, Outcome

PATH = "/api/gitops/webhook"


@dataclass(frozen=True)
class PushWebhook:
    """What ``watch --serve`` in pull mode gives the API: the secret (None when not
    configured), the branch it follows, and the daemon's hint."""

    secret: bytes | None
    branch: str
    on_push: Callable[[], None]


def build(ctx: ApiContext, hook: PushWebhook | None) -> APIRouter:
    router = APIRouter()

    @router.post(
        PATH,
        status_code=202,
        tags=["gitops"],
        responses={
            200: {"description": "Genuine, but not a push to the followed branch: ignored"},
            202: {"description": "A push: a fetch → validate → plan → apply pass is queued"},
        },
    )
    async def webhook(request: Request) -> JSONResponse:
        """A push event of GitHub, GitLab, Gitea or Forgejo, signed with the shared secret."""
        if hook is None:
            raise ApiError(
                409,
                "no_pull_daemon",
                {
                    "reason": "no_pull_daemon",
                    "message": "no watch daemon in pull mode runs in this process; push "
                    "webhooks are served by `devskyy watch --git-url URL --serve`",
                },
            )
        if hook.secret is None:
            raise ApiError(
                409,
                "no_webhook_secret",
                {
                    "reason": "no_webhook_secret",
                    "message": "the daemon has no webhook secret: set DEVSKYY_WEBHOOK_SECRET "
                    "or --webhook-secret-file",
                },
            )
        client = request.client.host if request.client else "unknown"
        charge_rate_limit(ctx, request, f"webhook:{client}")
        body = await request.body()
        verdict = verify(request.headers, body, hook.secret)
        if not verdict.ok:
            ctx.metrics.auth_failures.labels(verdict.reason).inc()
            _audit(ctx, client, verdict.host, verdict.reason)
            raise ApiError(
                401,
                "unauthenticated",
                {
                    "reason": verdict.reason,
                    "message": "sign the body with the shared secret: X-Hub-Signature-256, "
                    "X-Gitea-Signature or X-Forgejo-Signature (HMAC-SHA256), or X-Gitlab-Token",
                },
            )
        assert verdict.host is not None
        event = classify(verdict.host, request.headers, body, hook.branch)
        answer: dict[str, Any] = {"host": verdict.host, "event": event.event, "ref": event.ref}
        if event.action != "push":
            return JSONResponse({"status": "ignored", "reason": event.reason, **answer}, 200)
        hook.on_push()
        return JSONResponse({"status": "accepted", **answer}, 202)

    return router


def _audit(ctx: ApiContext, client: str, host: str | None, reason: str) -> None:
    event = AuditEvent(
        ctx.system.clock.now(),
        f"webhook:{client}",
        EventType.WEBHOOK_REJECTED,
        PATH,
        Outcome.DENIED,
        {"reason": reason, "host": host, "source": client},
    )
    ctx.security.audit.record(event, urgent=True)


__all__ = ["PATH", "PushWebhook", "build"]
