"""Registry endpoints: list, info, discover, health, workflow (202 + run id), reload."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Response

from devskyy.api import visibility
from devskyy.api.confine import audit_commands, confined_workflow_params
from devskyy.api.context import ApiContext, accepted_or_done
from devskyy.api.deps import Caller
from devskyy.api.models import (
    ERRORS,
    AgentInfoView,
    AgentList,
    DiscoverReport,
    RegistryHealth,
    ReloadReport,
    RunAccepted,
    RunView,
    WorkflowRequest,
)
from devskyy.runtime.workflows import validate_params

AgentName = Path(pattern=r"^[a-z][a-z0-9_-]{0,62}$")


def build(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/agents/registry", tags=["registry"], responses=ERRORS)
    guard = Depends(ctx.guard)
    registry = ctx.system.registry

    @router.get("/list", response_model=AgentList)
    async def list_agents(
        caller: Caller = guard, capability: str | None = Query(None, max_length=63)
    ) -> dict[str, Any]:
        """Every registered agent (with ``capability``, if given)."""
        rows = registry.list_agents(capability)
        return {"agents": rows, "total": len(rows)}

    @router.get("/info/{agent_name}", response_model=AgentInfoView)
    async def info(agent_name: str = AgentName, caller: Caller = guard) -> dict[str, Any]:
        """One agent's listing and metrics."""
        return registry.agent_info(agent_name)

    @router.post("/discover", response_model=DiscoverReport)
    async def discover(caller: Caller = guard) -> dict[str, Any]:
        """Make the running agents match live state."""
        return await registry.discover_and_register_all_agents()

    @router.get("/health", response_model=RegistryHealth)
    async def health(caller: Caller = guard) -> dict[str, Any]:
        """Health of every agent."""
        report = await registry.health_check_all()
        return visibility.registry_health(report, ctx.readable_agents(caller, report["agents"]))

    @router.post(
        "/workflow",
        status_code=202,
        response_model=RunAccepted | RunView,
        responses={200: {"model": RunView, "description": "finished (wait=true)"}},
    )
    async def workflow(
        body: WorkflowRequest,
        response: Response,
        caller: Caller = guard,
        wait: bool = Query(False, description="Wait (bounded) for the run to finish."),
    ) -> dict[str, Any]:
        """Run an applied workflow in the background; 202 with the run id at once."""
        caller.require({"workflow_name": body.workflow_name})
        workflow = ctx.runs.engine.workflow(body.workflow_name)
        confined = confined_workflow_params(
            ctx, workflow, validate_params(workflow, body.parameters)
        )
        run_id = ctx.runs.start_workflow(body.workflow_name, confined.params)
        audit_commands(ctx, caller.principal, run_id, confined)
        waited = wait or body.wait
        if waited:
            await ctx.runs.wait_for(run_id, ctx.settings.wait_timeout)
        return accepted_or_done(ctx, run_id, "workflow", waited, response)

    @router.post("/reload/{agent_name}", response_model=ReloadReport)
    async def reload(agent_name: str = AgentName, caller: Caller = guard) -> dict[str, Any]:
        """Re-import the agent's code; the new instance replaces the old only if it starts."""
        return await registry.reload(agent_name)

    return router
