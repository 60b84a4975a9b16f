"""Orchestrator endpoints: health, metrics, dependencies, execute (202 + run id).

``POST /execute`` compiles the task at once (``Orchestrator.compile_task``), so an unknown
capability is 404 and a bad task type or an empty capability list is 400 before anything
runs; the task then runs in the background as a workflow run of the DAG engine. Handlers
get the ``ApiContext`` through the ``api_context`` dependency.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response

from devskyy.api import visibility
from devskyy.api.confine import audit_commands, confined_params
from devskyy.api.context import ApiContext, accepted_or_done, api_context
from devskyy.api.deps import Caller
from devskyy.api.models import (
    ERRORS,
    AgentMetricsReport,
    DependencyGraph,
    ExecuteRequest,
    OrchestratorHealth,
    RunAccepted,
    RunView,
)
from devskyy.core.tasks import TaskRequest
from devskyy.model.manifests import Priority

Context = Depends(api_context)


def build(ctx: ApiContext) -> APIRouter:
    """The router; handlers take the context from the ``api_context`` dependency."""
    router = APIRouter(prefix="/api/agents/orchestrator", tags=["orchestrator"], responses=ERRORS)
    guard = Depends(ctx.guard)  # authentication needs the guard before any handler runs

    @router.get("/health", response_model=OrchestratorHealth)
    async def health(caller: Caller = guard, ctx: ApiContext = Context) -> dict[str, Any]:
        """Overall status, per-agent status and breakers, the queue, task counts."""
        report = await ctx.system.orchestrator.get_orchestrator_health()
        return visibility.orchestrator_health(report, ctx.readable_agents(caller, report["agents"]))

    @router.get("/metrics", response_model=AgentMetricsReport)
    async def metrics(caller: Caller = guard, ctx: ApiContext = Context) -> dict[str, Any]:
        """Performance figures for every agent the caller may read, keyed by name."""
        report = ctx.system.orchestrator.get_agent_metrics()
        return visibility.agent_metrics(report, ctx.readable_agents(caller, report))

    @router.get("/dependencies", response_model=DependencyGraph)
    async def dependencies(caller: Caller = guard, ctx: ApiContext = Context) -> dict[str, Any]:
        """The agent dependency graph (of the agents the caller may read)."""
        graph = ctx.system.orchestrator.get_dependency_graph()
        return visibility.dependency_graph(graph, ctx.readable_agents(caller, graph["nodes"]))

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
        ctx: ApiContext = Context,
        wait: bool = Query(False, description="Wait (bounded) for the task to finish."),
    ) -> dict[str, Any]:
        """Run a multi-agent task in the background; 202 with the run id at once."""
        task = TaskRequest(
            body.task_type,
            body.parameters,
            tuple(body.required_capabilities),
            Priority(body.priority),
        )
        ctx.system.orchestrator.compile_task(task)  # 404 / 400 now, not in the background
        request = body.model_dump(exclude={"wait"})
        confined = confined_params(ctx, body.parameters, body.required_capabilities)
        request["parameters"] = confined.params
        run_id = ctx.runs.start_task(request)
        audit_commands(ctx, caller.principal, run_id, confined)
        waited = wait or body.wait
        if waited:
            await ctx.runs.wait_for(run_id, ctx.settings.wait_timeout)
        return accepted_or_done(ctx, run_id, "task", waited, response)

    return router
