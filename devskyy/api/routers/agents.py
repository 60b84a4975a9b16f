"""Agent endpoints: scanner scan, fixer fix (``dry_run`` honoured), per-agent health and history.

Scanner and fixer paths are confined to the workspace roots before any agent sees
them (403 with the reason otherwise); task and workflow parameters are confined where an
agent's input model declares them paths (``devskyy.model.paths``; ``api/confine.py``, for
the orchestrator and registry routers). The agent then runs through the orchestrator
(breaker, retry policy, priority queue) like any other call. Results and history rows
show server paths as ``api/paths_out.py`` says (workspace-relative, else ``<server path>``).
"""

from __future__ import annotations

import pathlib
from typing import Any

from fastapi import APIRouter, Depends, Path, Query

from devskyy.api.context import ApiContext
from devskyy.api.deps import ApiError, Caller
from devskyy.api.models import (
    ERRORS,
    AgentHealth,
    AgentHistory,
    AgentResult,
    FixRequest,
    ScanRequest,
)
from devskyy.api.workspace import (
    OutsideWorkspace,
    PathNotFound,
    confine,
)
from devskyy.errors import CircuitOpen, NotFound, PermanentError, TemporaryError
from devskyy.model.manifests import Priority

AgentName = Path(pattern=r"^[a-z][a-z0-9_-]{0,62}$")


def _confined(ctx: ApiContext, path: str, base: str | None = None) -> str:
    """``path`` confined (relative to ``base``, else the first root); errors name it as given."""
    try:
        folder = pathlib.Path(base) if base is not None else None
        return str(confine(path, ctx.settings.workspace_roots, folder))
    except OutsideWorkspace as exc:
        raise ApiError(403, "outside_workspace", {"reason": str(exc)}) from None
    except PathNotFound as exc:
        raise ApiError(404, "not_found", {"reason": str(exc)}) from None


async def _call(ctx: ApiContext, agent: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    if ctx.system.registry.get_agent(agent) is None:
        raise NotFound(f"agent {agent!r} is not registered")
    outcome = await ctx.system.orchestrator.call_with_retry(agent, kwargs, priority=Priority.HIGH)
    if outcome.error is None:
        assert outcome.result is not None
        result: dict[str, Any] = ctx.paths.shown(outcome.result)
        return result
    if isinstance(outcome.error, CircuitOpen | TemporaryError):
        raise ApiError(503, "agent_unavailable", {"reason": outcome.describe_error()})
    if isinstance(outcome.error, PermanentError):
        raise ApiError(400, "agent_refused", {"reason": str(outcome.error)})
    raise ApiError(502, "agent_failed", {"reason": f"{type(outcome.error).__name__}"})


def build(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/agents", tags=["agents"], responses=ERRORS)
    guard = Depends(ctx.guard)

    @router.post("/scanner/scan", response_model=AgentResult)
    async def scan(body: ScanRequest, caller: Caller = guard) -> dict[str, Any]:
        """Scan a folder inside the workspace."""
        kwargs = {**body.model_dump(), "target_path": _confined(ctx, body.target_path)}
        return await _call(ctx, "scanner", kwargs)

    @router.post("/fixer/fix", response_model=AgentResult)
    async def fix(body: FixRequest, caller: Caller = guard) -> dict[str, Any]:
        """Fix what a scan found; with ``dry_run`` nothing is written (diffs come back)."""
        given = body.target_path or body.scan_results.get("target_path")
        if given is not None and not isinstance(given, str):
            raise ApiError(422, "invalid_request", {"reason": "target_path must be a string"})
        root = _confined(ctx, given or str(ctx.settings.workspace_roots[0]))
        for name in body.target_files:
            _confined(ctx, name, base=root)
        kwargs = {
            **body.model_dump(exclude={"target_path", "scan_results"}),
            "scan_results": body.scan_results or None,
            "target_path": root,
        }
        if kwargs["scan_results"] is not None:
            kwargs["scan_results"] = {**body.scan_results, "target_path": root}
        return await _call(ctx, "fixer", kwargs)

    @router.get("/{agent_name}/health", response_model=AgentHealth)
    async def health(agent_name: str = AgentName, caller: Caller = guard) -> dict[str, Any]:
        """One agent's status, figures and breaker."""
        agent = ctx.system.registry.get_agent(agent_name)
        if agent is None:
            raise NotFound(f"agent {agent_name!r} is not registered")
        report = await agent.health_check()
        report["agent_name"] = agent_name
        report["circuit_open"] = ctx.system.orchestrator.is_circuit_open(agent_name)
        return report

    @router.get("/{agent_name}/history", response_model=AgentHistory)
    async def history(
        agent_name: str = AgentName,
        caller: Caller = guard,
        limit: int = Query(100, ge=1, le=1000),
    ) -> dict[str, Any]:
        """The most recent tasks that ran the agent, oldest first."""
        if ctx.system.registry.applied_agent(agent_name) is None:
            raise NotFound(f"agent {agent_name!r} is not applied")
        rows = ctx.paths.shown(ctx.system.orchestrator.agent_history(agent_name, limit))
        return {"agent_name": agent_name, "history": rows, "count": len(rows)}

    return router
