"""Confinement of task and workflow parameters, shared by the routers that start work.

Where an agent's input model declares a field a path (``devskyy.model.paths``), the
parameter that feeds it must lie inside the workspace roots (403 ``outside_workspace``, or
404 ``not_found`` for a path inside that does not exist); an omitted folder input is the
workspace root. A parameter that feeds a declared command input (``ServerCommand``) is
refused (403 ``command_not_allowed``): starting work must not mean running any program as
the server's user. The one exception is the operator's: a value whose words equal one of
``serve --allow-command``'s lines (``devskyy.core.allowed_commands``) is taken, replaced by
the operator's own text, and the run that uses it is audited (``audit_commands``). A
parameter spliced into a longer command in a step's input is refused even then: what
would run is not the line the operator allowed. The orchestrator router confines a task's
parameters, the registry router a workflow's; neither imports the other (import-linter
keeps routers independent).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from devskyy.api.context import ApiContext
from devskyy.api.deps import ApiError
from devskyy.api.workspace import (
    OutsideWorkspace,
    PathNotFound,
    confine_inputs,
    param_of,
    workflow_path_params,
)
from devskyy.core.allowed_commands import match
from devskyy.core.keys import redact_text
from devskyy.core.selection import select_for
from devskyy.errors import NotFound
from devskyy.model.manifests import Workflow
from devskyy.model.paths import PathField, PathKind, path_inputs
from devskyy.model.security import AuditEvent, EventType, Outcome

# A workflow parameter named anywhere in a step input (``${{ params.x }}`` or inside text).
_PARAM_REF = re.compile(r"\bparams\.([A-Za-z_][A-Za-z0-9_-]*)")
_OPTION = "--allow-command"

log = logging.getLogger("devskyy.api")


@dataclass(frozen=True)
class UsedCommand:
    """A command input a request set to one of the operator's allowed command lines."""

    parameter: str
    command: str  # the operator's text, which is what runs


@dataclass(frozen=True)
class Confined:
    """Parameters ready to start work with, and the allowed commands they use."""

    params: dict[str, Any]
    commands: tuple[UsedCommand, ...] = ()


def _declared(ctx: ApiContext, agent: str | None) -> dict[str, PathField]:
    """The path inputs agent ``agent`` declares (its class's ``input_model``)."""
    instance = ctx.system.registry.get_agent(agent) if agent else None
    return path_inputs(getattr(type(instance), "input_model", None)) if instance else {}


def confined_params(
    ctx: ApiContext, params: dict[str, Any], capabilities: Iterable[str]
) -> Confined:
    """Task parameters with the path inputs of the task's agents confined, and a folder
    input omitted set to the workspace root (403 outside the workspace)."""
    orchestrator = ctx.system.orchestrator
    infos = {n: orchestrator.agent_info(n) for n in orchestrator.agent_names}
    declared: dict[str, PathField] = {}
    for agent in select_for(capabilities, infos):
        declared.update(_declared(ctx, agent))
    commands = [n for n, f in declared.items() if f.kind is PathKind.COMMAND]
    params, used = _commands(ctx, params, commands, ())
    return Confined(_confine(ctx, params, declared), used)


def confined_workflow_params(
    ctx: ApiContext, workflow: Workflow, params: dict[str, Any]
) -> Confined:
    """Workflow parameters that feed a declared path input of a step, confined."""
    steps = []
    commands: list[str] = []
    spliced: list[str] = []
    for step in workflow.spec.steps:
        try:
            agent = step.agent or ctx.system.orchestrator.resolve(step.capability or "")
        except NotFound:
            continue  # the run itself reports the missing agent
        declared = _declared(ctx, agent)
        steps.append((step.input, declared))
        for name, field in declared.items():
            if field.kind is PathKind.COMMAND:
                text = str(step.input.get(name, ""))
                whole = param_of(text)
                if whole:
                    commands.append(whole)
                else:
                    spliced += _PARAM_REF.findall(text)
    params, used = _commands(ctx, params, commands, spliced)
    return Confined(_confine(ctx, params, workflow_path_params(steps)), used)


def _commands(
    ctx: ApiContext, params: dict[str, Any], whole: Iterable[str], spliced: Iterable[str]
) -> tuple[dict[str, Any], tuple[UsedCommand, ...]]:
    """``params`` with each command parameter set to the operator's allowed line it names.

    ``whole``: parameters that are a command input entire; ``spliced``: parameters that
    are part of one. 403 for any set to something else (a spliced one always).
    """
    allowed = ctx.settings.allowed_commands
    spliced = set(spliced)
    out = dict(params)
    used: list[UsedCommand] = []
    for name in sorted(set(whole) | spliced):
        value = params.get(name)
        if value in (None, ""):
            continue
        command = None if name in spliced else match(value, allowed)
        if command is None:
            raise _refused(name, spliced=name in spliced, any_allowed=bool(allowed))
        out[name] = command
        used.append(UsedCommand(name, command))
    return out, tuple(used)


def _refused(name: str, *, spliced: bool, any_allowed: bool) -> ApiError:
    """403 ``command_not_allowed``; the hint names the option, never the value sent (a
    command line may carry a token)."""
    reason = (
        f"parameter {name!r} is a command run on the server; the HTTP API does not "
        "take one (run it with devskyy run on the server)"
    )
    if spliced:
        hint = (
            "it is part of a longer command in a step's input: only a parameter that is "
            f"the whole command may name a command line the server allows ({_OPTION})"
        )
    elif any_allowed:
        hint = (
            f"it is not one of the command lines this server allows ({_OPTION}): a "
            "request must name one word for word"
        )
    else:
        hint = (
            "this server allows none: its operator may list exact command lines with "
            f"devskyy serve {_OPTION}"
        )
    return ApiError(403, "command_not_allowed", {"reason": reason, "hint": hint})


def audit_commands(ctx: ApiContext, principal: str, run_id: str, confined: Confined) -> None:
    """Audit (and log) each allowed command a run started by ``principal`` uses."""
    for used in confined.commands:
        command = redact_text(used.command)
        details = {
            "permission": "run_command",
            "parameter": used.parameter,
            "command": command,
            "run_id": run_id,
            "allowed_by": _OPTION,
        }
        ctx.security.audit.record(
            AuditEvent(
                ctx.system.clock.now(),
                principal,
                EventType.PERMISSION_ALLOWED,
                f"runs/{run_id}",
                Outcome.SUCCESS,
                details,
            ),
            urgent=True,
        )
        log.info(
            "run uses an allowed command",
            extra={"fields": {"run_id": run_id, "principal": principal, **details}},
        )


def _confine(
    ctx: ApiContext, params: dict[str, Any], declared: dict[str, PathField]
) -> dict[str, Any]:
    try:
        return confine_inputs(params, ctx.settings.workspace_roots, declared)
    except OutsideWorkspace as exc:
        raise ApiError(403, "outside_workspace", {"reason": str(exc)}) from None
    except PathNotFound as exc:
        raise ApiError(404, "not_found", {"reason": str(exc)}) from None
