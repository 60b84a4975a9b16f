"""What each endpoint needs: one (permission, resource) per route, a pure table.

Resources may name a path parameter (``agents/{agent_name}``) or a body field
(``workflows/{workflow_name}``); ``Need.fill`` puts the values in. ``/healthz`` is the only
route without an entry, and the only one served without a key (``PUBLIC``). The push webhook
is authenticated by its signature with a shared secret instead of a key (``SIGNED``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

PUBLIC = frozenset({("GET", "/healthz")})
SIGNED: dict[tuple[str, str], str] = {
    # A git host cannot hold an API key: it signs the raw body with the shared secret
    # (api/routers/gitops.py, core/webhook.py); no key, no RBAC, rate limited per address.
    ("POST", "/api/gitops/webhook"): "HMAC-SHA256 signature or GitLab token (shared secret)",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,252}$")


@dataclass(frozen=True)
class Need:
    """A permission on a resource (template)."""

    permission: str
    resource: str

    def fill(self, values: Mapping[str, object]) -> Need:
        """The concrete resource; a value that is not a plain name becomes ``?``."""

        def one(match: re.Match[str]) -> str:
            value = str(values.get(match.group(1), ""))
            return value if _NAME.match(value) else "?"

        return Need(self.permission, re.sub(r"\{(\w+)\}", one, self.resource))


TABLE: dict[tuple[str, str], Need] = {
    ("GET", "/api/agents/orchestrator/health"): Need("read", "orchestrator"),
    ("GET", "/api/agents/orchestrator/metrics"): Need("read", "orchestrator"),
    ("GET", "/api/agents/orchestrator/dependencies"): Need("read", "orchestrator"),
    ("POST", "/api/agents/orchestrator/execute"): Need("execute", "orchestrator"),
    ("GET", "/api/agents/registry/list"): Need("read", "registry"),
    ("GET", "/api/agents/registry/info/{agent_name}"): Need("read", "agents/{agent_name}"),
    ("POST", "/api/agents/registry/discover"): Need("write", "registry"),
    ("GET", "/api/agents/registry/health"): Need("read", "registry"),
    ("POST", "/api/agents/registry/workflow"): Need("execute", "workflows/{workflow_name}"),
    ("POST", "/api/agents/registry/reload/{agent_name}"): Need("write", "agents/{agent_name}"),
    ("POST", "/api/security/api-key/generate"): Need("write", "keys"),
    ("POST", "/api/security/api-key/validate"): Need("read", "keys"),
    ("DELETE", "/api/security/api-key/{key_id}"): Need("write", "keys"),
    ("GET", "/api/security/audit-log"): Need("read", "audit"),
    ("GET", "/api/security/summary"): Need("read", "security"),
    ("POST", "/api/security/check-permission"): Need("read", "security"),
    ("POST", "/api/agents/scanner/scan"): Need("execute", "agents/scanner"),
    ("POST", "/api/agents/fixer/fix"): Need("execute", "agents/fixer"),
    ("GET", "/api/agents/{agent_name}/health"): Need("read", "agents/{agent_name}"),
    ("GET", "/api/agents/{agent_name}/history"): Need("read", "agents/{agent_name}"),
    ("GET", "/api/runs/{run_id}"): Need("read", "runs/{run_id}"),
    ("POST", "/api/runs/{run_id}/resume"): Need("execute", "runs/{run_id}"),
    ("GET", "/metrics"): Need("read", "metrics"),
    ("GET", "/openapi.json"): Need("read", "registry"),
}
