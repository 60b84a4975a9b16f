"""Request and response bodies (pydantic), so every endpoint is typed in ``/openapi.json``.

Request bodies follow the guide exactly and refuse unknown fields (a typo such as
``dryrun`` is a 422, never silently ignored). Response models name the fields the
runtime promises and allow the rest (``extra="allow"``): the runtime's reports carry
more detail than the guide lists.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Name = Field(min_length=1, max_length=253)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# -- requests ------------------------------------------------------------------------


class ExecuteRequest(_Body):
    """``POST /api/agents/orchestrator/execute``."""

    task_type: str = Field(min_length=1, max_length=255)
    parameters: dict[str, Any] = Field(default_factory=dict)
    required_capabilities: list[str] = Field(default_factory=list, max_length=64)
    priority: Literal["critical", "high", "medium", "low"] = "medium"
    wait: bool = False


class WorkflowRequest(_Body):
    """``POST /api/agents/registry/workflow``."""

    workflow_name: str = Field(min_length=1, max_length=63)
    parameters: dict[str, Any] = Field(default_factory=dict)
    wait: bool = False


class GenerateKeyRequest(_Body):
    """``POST /api/security/api-key/generate``."""

    agent_name: str = Name
    role: str = Field(default="service", min_length=1, max_length=63)
    expires_in_days: float | None = Field(default=None, gt=0, le=3650)


class ValidateKeyRequest(_Body):
    """``POST /api/security/api-key/validate``."""

    api_key: str = Field(min_length=1, max_length=512)


class CheckPermissionRequest(_Body):
    """``POST /api/security/check-permission``."""

    agent_name: str = Name
    resource: str = Name
    permission: Literal["read", "write", "execute", "admin"]


class ScanRequest(_Body):
    """``POST /api/agents/scanner/scan``; ``target_path`` is inside a workspace root."""

    scan_type: Literal["full", "security", "performance", "quick"] = "full"
    target_path: str = Field(default="./", min_length=1, max_length=4096)
    include_live_check: bool = False


class FixRequest(_Body):
    """``POST /api/agents/fixer/fix``; ``dry_run`` returns diffs and writes nothing."""

    fix_type: Literal["auto", "security", "performance", "format"] = "auto"
    scan_results: dict[str, Any] = Field(default_factory=dict)
    target_files: list[str] = Field(default_factory=list, max_length=10_000)
    target_path: str | None = Field(default=None, min_length=1, max_length=4096)
    dry_run: bool = False
    create_backup: bool = True


# -- responses -----------------------------------------------------------------------


class ErrorBody(BaseModel):
    """Every error: a reason code, a readable detail, the request id."""

    error: str
    detail: Any = None
    request_id: str | None = None


class Liveness(BaseModel):
    """``GET /healthz``."""

    status: Literal["ok"]


class OrchestratorHealth(_Open):
    """Overall status, per-agent health and breakers, the queue, task counts."""

    uptime_seconds: float


class AgentMetricsReport(_Open):
    """Every agent's figures keyed by agent name."""


class DependencyGraph(_Open):
    """Nodes, edges (dependency -> dependent), run order."""


class RunAccepted(BaseModel):
    """A run started in the background: poll ``status_url``."""

    run_id: str
    kind: Literal["task", "workflow"]
    status: str
    status_url: str


class RunView(_Open):
    """A run (workflow or task) as the store has it now."""

    run_id: str
    kind: Literal["task", "workflow"]
    status: str
    result: dict[str, Any] | None = None


class AgentRow(_Open):
    """One registered agent."""

    name: str
    capabilities: list[str]
    status: str


class AgentList(BaseModel):
    """``GET /api/agents/registry/list``."""

    agents: list[AgentRow]
    total: int


class AgentInfoView(_Open):
    """One agent's listing plus its metrics."""

    name: str


class DiscoverReport(_Open):
    """What discovery did per agent."""

    total_agents: int
    registered: int


class RegistryHealth(_Open):
    """``healthy_agents`` of ``total_agents``."""

    healthy_agents: int
    total_agents: int


class ReloadReport(_Open):
    """The reloaded agent and its state."""

    agent: str
    status: str


class NewKeyView(BaseModel):
    """A created key: ``api_key`` is shown this once."""

    api_key: str
    key_id: str
    agent_name: str
    role: str
    expires: str


class KeyCheckView(BaseModel):
    """Who a key belongs to, or the reason code (never the key)."""

    valid: bool
    principal: str | None = None
    role: str | None = None
    key_id: str | None = None
    expires: str | None = None
    reason: str | None = None
    detail: str = ""


class RevokeView(BaseModel):
    """``DELETE /api/security/api-key/{key_id}``."""

    key_id: str
    revoked: bool


class AuditLog(BaseModel):
    """Recent audit events, oldest first."""

    events: list[dict[str, Any]]
    count: int


class SecuritySummary(_Open):
    """Keys by state, principals, roles, grants, blocks, audit events."""

    principals: int


class PermissionView(BaseModel):
    """The RBAC decision for ``agent_name``."""

    agent_name: str
    resource: str
    permission: str
    allowed: bool
    reason: str


class AgentResult(_Open):
    """An agent's output (scanner or fixer)."""


class AgentHealth(_Open):
    """One agent's health."""

    agent_name: str
    status: str


class AgentHistory(BaseModel):
    """The tasks that ran an agent, oldest first."""

    agent_name: str
    history: list[dict[str, Any]]
    count: int


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No key, or a bad one (detail.reason says which)"},
    403: {"model": ErrorBody, "description": "RBAC denied, key blocked, or outside workspace"},
    404: {"model": ErrorBody, "description": "A path in the workspace that does not exist"},
    413: {"model": ErrorBody, "description": "Body over the size cap"},
    422: {"model": ErrorBody, "description": "Invalid body or parameters (field errors)"},
    429: {"model": ErrorBody, "description": "Over the rate limit; see Retry-After"},
    500: {"model": ErrorBody, "description": "Internal error (no details, a request id)"},
}
