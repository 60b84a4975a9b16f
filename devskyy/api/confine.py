"""Confinement of task and workflow parameters, shared by the routers that start work.

Where an agent's input model declares a field a path (``devskyy.model.paths``), the
parameter that feeds it must lie inside the workspace roots (403 ``outside_workspace``, or
404 ``not_found`` for a path inside that does not exist); an omitted folder input is the
workspace root. A parameter that feeds a declared command input (``ServerCommand``) is
refused (403 ``command_not_allowed``): starting work must not mean running any program as
the server's user. The orchestrator router confines a task's parameters, the registry router
a workflow's; neither imports the other (import-linter keeps routers independent).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
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
from devskyy.model.paths import PathField, PathKind, path_inputs

# A workflow parameter named anywhere in a step input (``${{ params.x }}`` or inside text).
_PARAM_REF = re.compile(r"\bparams\.([A-Za-z_][A-Za-z0-9_-]*)")


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
    _refuse_commands(params, [n for n, f in declared.items() if f.kind is PathKind.COMMAND])
    return _confine(ctx, params, declared)


def confined_workflow_params(
    ctx: ApiContext, workflow: Workflow, params: dict[str, Any]
) -> dict[str, Any]:
    """Workflow parameters that feed a declared path input of a step, confined."""
    steps = []
    commands: list[str] = []
    for step in workflow.spec.steps:
        try:
            agent = step.agent or ctx.system.orchestrator.resolve(step.capability or "")
        except NotFound:
            continue  # the run itself reports the missing agent
        declared = _declared(ctx, agent)
        steps.append((step.input, declared))
        for name, field in declared.items():
            if field.kind is PathKind.COMMAND:
                commands += _PARAM_REF.findall(str(step.input.get(name, "")))
    _refuse_commands(params, commands)
    return _confine(ctx, params, workflow_path_params(steps))


def _refuse_commands(params: Mapping[str, Any], names: Iterable[str]) -> None:
    """403 when ``params`` sets any of ``names`` (inputs run as commands on the server)."""
    for name in sorted(set(names)):
        if params.get(name) not in (None, ""):
            reason = (
                f"parameter {name!r} is a command run on the server; the HTTP API does not "
                "take one (run it with devskyy run on the server)"
            )
            raise ApiError(403, "command_not_allowed", {"reason": reason})


def _confine(
    ctx: ApiContext, params: dict[str, Any], declared: dict[str, PathField]
) -> dict[str, Any]:
    try:
        return confine_inputs(params, ctx.settings.workspace_roots, declared)
    except OutsideWorkspace as exc:
        raise ApiError(403, "outside_workspace", {"reason": str(exc)}) from None
    except PathNotFound as exc:
        raise ApiError(404, "not_found", {"reason": str(exc)}) from None
