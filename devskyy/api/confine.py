"""Confinement of task and workflow parameters, shared by the routers that start work.

Where an agent's input model declares a field a path (``devskyy.model.paths``), the
parameter that feeds it must lie inside the workspace roots (403 ``outside_workspace``, or
404 ``not_found`` for a path inside that does not exist); an omitted folder input is the
workspace root. The orchestrator router confines a task's parameters, the registry router
a workflow's; neither imports the other (import-linter keeps routers independent).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from devskyy.api.context import ApiContext
from devskyy.api.deps import ApiError
from devskyy.api.workspace import (
    OutsideWorkspace,
    PathNotFound,
    confine_inputs,
    workflow_path_params,
)
from devskyy.core.selection import select_for
from devskyy.errors import NotFound
from devskyy.model.manifests import Workflow
from devskyy.model.paths import PathField, path_inputs


def _declared(ctx: ApiContext, agent: str | None) -> dict[str, PathField]:
    """The path inputs agent ``agent`` declares (its class's ``input_model``)."""
    instance = ctx.system.registry.get_agent(agent) if agent else None
    return path_inputs(getattr(type(instance), "input_model", None)) if instance else {}


def confined_params(
    ctx: ApiContext, params: dict[str, Any], capabilities: Iterable[str]
) -> dict[str, Any]:
    """Task parameters with the path inputs of the task's agents confined, and a folder
    input omitted set to the workspace root (403 outside the workspace)."""
    orchestrator = ctx.system.orchestrator
    infos = {n: orchestrator.agent_info(n) for n in orchestrator.agent_names}
    declared: dict[str, PathField] = {}
    for agent in select_for(capabilities, infos):
        declared.update(_declared(ctx, agent))
    return _confine(ctx, params, declared)


def confined_workflow_params(
    ctx: ApiContext, workflow: Workflow, params: dict[str, Any]
) -> dict[str, Any]:
    """Workflow parameters that feed a declared path input of a step, confined."""
    steps = []
    for step in workflow.spec.steps:
        try:
            agent = step.agent or ctx.system.orchestrator.resolve(step.capability or "")
        except NotFound:
            continue  # the run itself reports the missing agent
        steps.append((step.input, _declared(ctx, agent)))
    return _confine(ctx, params, workflow_path_params(steps))


def _confine(
    ctx: ApiContext, params: dict[str, Any], declared: dict[str, PathField]
) -> dict[str, Any]:
    try:
        return confine_inputs(params, ctx.settings.workspace_roots, declared)
    except OutsideWorkspace as exc:
        raise ApiError(403, "outside_workspace", {"reason": str(exc)}) from None
    except PathNotFound as exc:
        raise ApiError(404, "not_found", {"reason": str(exc)}) from None
