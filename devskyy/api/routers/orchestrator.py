"""Orchestrator endpoints: health, metrics, dependencies, execute (202 + run id)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from devskyy.api.app import ApiContext
from devskyy.api.deps import ApiError, Caller
from devskyy.api.models import (
    ERRORS,
    AgentMetricsReport,
    DependencyGraph,
    ExecuteRequest,
    OrchestratorHealth,
    RunAccepted,
    RunView,
)
from devskyy.api.routers.agents import confined_params
from devskyy.errors import NotFound


def accepted_or_done(
    ctx: ApiContext, run_id: str, kind: str, waited: bool, response: Response
) -> dict[str, Any]:
    """The run's view when the caller waited and it ended, else 202 with where to poll."""
    view = ctx.runs.view(run_id)
    if waited and view["status"] not in ("pending", "running"):
        response.status_code = 200
        return view
    response.status_code = 202
    return RunAccepted(
        run_id=run_id, kind=kind, status=view["status"], status_url=f"/api/runs/{run_id}"
    ).model_dump()


def build(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/agents/orchestrator", tags=["orchestrator"], responses=ERRORS)
    guard = Depends(ctx.guard)

    @router.get("/health", response_model=OrchestratorHealth)
    async def health(caller: Caller = guard) -> dict[str, Any]:
        """Overall status, per-agent status and breakers, the queue, task counts."""
        return await ctx.system.orchestrator.get_orchestrator_health()

    @router.get("/metrics", response_model=AgentMetricsReport)
    async def metrics(caller: Caller = guard) -> dict[str, Any]:
        """Performance figures for every agent, keyed by name."""
        return ctx.system.orchestrator.get_agent_metrics()

    @router.get("/dependencies", response_model=DependencyGraph)
    async def dependencies(caller: Caller = guard) -> dict[str, Any]:
        """The agent dependency graph."""
        return ctx.system.orchestrator.get_dependency_graph()

    @router.post(
        "/execute",
        status_code=202,
        response_model=RunAccepted | RunView,
        responses={200: {"model": RunView, "description": "finished (wait=true)"}},
    )
    async def execute(
        body: ExecuteRequest,
        response: Response,
        caller: Caller = guard,
        wait: bool = Query(False, description="Wait (bounded) for the task to finish."),
    ) -> dict[str, Any]:
        """Run a multi-agent task in the background; 202 with the run id at once."""
        for cap in body.required_capabilities:
            try:
                ctx.system.orchestrator.resolve(cap)
            except NotFound as exc:
                raise ApiError(404, "not_found", str(exc)) from None
        request = body.model_dump(exclude={"wait"})
        request["parameters"] = confined_params(ctx, body.parameters, body.required_capabilities)
        run_id = ctx.runs.start_task(request)
        waited = wait or body.wait
        if waited:
            await ctx.runs.wait_for(run_id, ctx.settings.wait_timeout)
        return accepted_or_done(ctx, run_id, "task", waited, response)

    return router
