"""What each dashboard page and element needs, taken from the API's permission table.

A page that shows what an API route returns needs exactly what that route needs
(``permissions.TABLE``), so a key sees the same things in the browser and over HTTP.
What no API route returns has its need named here and documented in ``docs/ui.md``:
the runs list (``read runs``), the revisions (``read manifests``, the resource the
operator role names for them) and a workflow's step graph (``read workflows/NAME``).

``Viewer`` is the signed-in key. ``Viewer.may`` decides an element (a table column, a
link, the resume button) purely from the policy with the key's role, as synced once when
the request's viewer was made (not once per element): it is neither
audited nor counted as an offence, since hiding a link is not a refused request. Pages
themselves are decided by ``ApiContext.decide`` with the presented key, audited like the
API (see ``routes``).
"""

from __future__ import annotations

from dataclasses import dataclass

from devskyy.api.permissions import TABLE, Need
from devskyy.core.rbac import Policy

OVERVIEW = TABLE[("GET", "/api/agents/registry/list")]
AGENT_DETAIL = TABLE[("GET", "/api/agents/{agent_name}/health")]
GRAPH = TABLE[("GET", "/api/agents/orchestrator/dependencies")]
RUN = TABLE[("GET", "/api/runs/{run_id}")]
RESUME = TABLE[("POST", "/api/runs/{run_id}/resume")]
SECURITY = TABLE[("GET", "/api/security/summary")]
KEYS = TABLE[("POST", "/api/security/api-key/validate")]
AUDIT = TABLE[("GET", "/api/security/audit-log")]
RUNS = Need("read", "runs")
REVISIONS = Need("read", "manifests")
WORKFLOW = Need("read", "workflows/{workflow_name}")


@dataclass(frozen=True)
class Viewer:
    """A signed-in session: who, with which key and role, the form's CSRF token, and the
    RBAC policy of this request (``SecurityManager.policy()``, synced once)."""

    principal: str
    role: str
    key_id: str
    csrf: str
    policy: Policy

    def may(self, need: Need) -> bool:
        """Whether this key's role allows ``need`` (pure policy decision, not audited)."""
        decision = self.policy.decide(self.principal, need.permission, need.resource, (self.role,))
        return decision.allowed

    def may_fill(self, need: Need, **values: str) -> bool:
        """``may`` for a need whose resource names a value (``agents/{agent_name}``)."""
        return self.may(need.fill(values))

    def nav(self) -> dict[str, bool]:
        """Which top-level pages this key may open (the navigation shows only those)."""
        return {
            "overview": self.may(OVERVIEW),
            "graph": self.may(GRAPH),
            "runs": self.may(RUNS),
            "revisions": self.may(REVISIONS),
            "security": self.may(SECURITY),
            "audit": self.may(AUDIT),
        }
