"""The OpenAPI document: both key schemes, ``security`` on every operation, every status.

FastAPI's generated document knows the routes and their bodies but not what the
authentication dependency and the error handlers add. This module completes it:

- ``components.securitySchemes``: ``bearer`` (``Authorization: Bearer KEY``) and
  ``apiKey`` (``X-API-Key``); every operation but ``/healthz`` and the push webhook requires
  one of them, ``/healthz`` declares ``security: []``; the webhook (``permissions.SIGNED``)
  declares ``webhookSignature``: a signature of its body with the shared secret, no key;
- responses: every guarded operation may answer 401, 403, 413, 422, 429 and 500; the
  statuses particular to a route (400, 404, 409, 502, 503) come from ``EXTRA``; each
  error response refers to the one ``ErrorBody`` schema.

``tests/test_api_openapi.py`` validates the result with openapi-spec-validator and checks
the table against what the handlers can raise.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from devskyy.api.permissions import PUBLIC, SIGNED

SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A devskyy API key: `Authorization: Bearer dsk_…`.",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The same key in the `X-API-Key` header.",
    },
}
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
# The push webhook (permissions.SIGNED) takes no key: the git host signs the raw body with
# the shared secret. OpenAPI cannot say "HMAC of the body", so the scheme names the header
# and the description says the rest.
SCHEMES["webhookSignature"] = {
    "type": "apiKey",
    "in": "header",
    "name": "X-Hub-Signature-256",
    "description": "`sha256=` + hex HMAC-SHA256 of the raw body with the shared webhook "
    "secret (DEVSKYY_WEBHOOK_SECRET or --webhook-secret-file). Gitea and Forgejo send the "
    "same HMAC in X-Gitea-Signature / X-Forgejo-Signature, GitLab the secret itself in "
    "X-Gitlab-Token. No API key.",
}
SIGNED_ERRORS: dict[int, str] = {
    401: "A bad or missing signature (`detail.reason`: bad_signature, missing_signature); audited",
    409: "No watch daemon in pull mode in this process, or it has no webhook secret",
    413: "Body over the size cap",
    422: "JSON nested too deep",
    429: "Over the rate limit of the client address; see `Retry-After`",
    500: "Internal error: no details, only the request id (the server log has them)",
}

COMMON: dict[int, str] = {
    401: "No key, or a bad one (`detail.reason`: missing, malformed, unknown, expired, revoked)",
    403: "RBAC denied (`detail.reason`), or the key or source is blocked",
    413: "Body over the size cap",
    422: "Invalid body or parameters: field errors, malformed JSON, JSON nested too deep",
    429: "Over the rate limit; see `Retry-After` and `RateLimit-*`",
    500: "Internal error: no details, only the request id (the server log has them)",
}

_AGENT = {
    400: "The agent refused the request (`agent_refused`, with the reason)",
    404: "No such agent, or a path inside the workspace that does not exist",
    502: "The agent failed (`agent_failed`)",
    503: "The agent is unavailable: breaker open or timed out (`agent_unavailable`)",
}
EXTRA: dict[tuple[str, str], dict[int, str]] = {
    ("POST", "/api/agents/orchestrator/execute"): {
        400: "A task that cannot be compiled (type, capabilities, parameters)",
        404: "A capability no agent provides, or a path that does not exist",
    },
    ("GET", "/api/agents/registry/info/{agent_name}"): {404: "No such agent"},
    ("POST", "/api/agents/registry/workflow"): {
        400: "Parameters the workflow does not accept",
        404: "No such workflow, or a path that does not exist",
    },
    ("POST", "/api/agents/registry/reload/{agent_name}"): {404: "The agent is not applied"},
    ("POST", "/api/security/api-key/generate"): {
        400: "A principal name that is not a name (or looks like a key)",
        404: "No such role",
        409: "No unique key id could be allocated",
    },
    ("DELETE", "/api/security/api-key/{key_id}"): {
        400: "Not a key id",
        404: "No such key",
        409: "The last usable admin key (`detail` says why; the CLI may force it)",
    },
    ("GET", "/api/security/audit-log"): {400: "Unknown event type"},
    ("POST", "/api/agents/scanner/scan"): _AGENT,
    ("POST", "/api/agents/fixer/fix"): _AGENT,
    ("GET", "/api/agents/{agent_name}/health"): {404: "The agent is not registered"},
    ("GET", "/api/agents/{agent_name}/history"): {404: "The agent is not applied"},
    ("GET", "/api/runs/{run_id}"): {404: "No run with that id"},
    ("POST", "/api/runs/{run_id}/resume"): {
        404: "No run with that id",
        409: "The run is not interrupted or cancelled (nothing to resume)",
    },
}

_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}


def complete(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with the key schemes, ``security`` and the error statuses of each operation."""
    components = doc.setdefault("components", {})
    components["securitySchemes"] = SCHEMES
    schemas = components.setdefault("schemas", {})
    schemas.setdefault(
        "ErrorBody",
        {
            "title": "ErrorBody",
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string"},
                "detail": {},
                "request_id": {"type": ["string", "null"]},
            },
        },
    )
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _HTTP_METHODS:
                continue
            key = (method.upper(), path)
            responses = {
                code: answer
                for code, answer in operation.get("responses", {}).items()
                if not str(code).startswith(("4", "5"))
            }
            if key in PUBLIC:
                operation["security"] = []
            elif key in SIGNED:
                operation["security"] = [{"webhookSignature": []}]
                for code in sorted(SIGNED_ERRORS):
                    responses[str(code)] = _error(SIGNED_ERRORS[code])
            else:
                operation["security"] = SECURITY
                errors = {**COMMON, **EXTRA.get(key, {})}
                for code in sorted(errors):
                    responses[str(code)] = _error(errors[code])
            operation["responses"] = responses
    return doc


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document, completed once and kept."""
    if app.openapi_schema is None:
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        app.openapi_schema = complete(doc)
    return app.openapi_schema
