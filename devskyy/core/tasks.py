"""Compile an orchestrator task into a Workflow value (pure).

The guide's ``execute_task(task_type, parameters, required_capabilities, priority)`` is a
workflow built on the fly and run by the same DAG engine as named workflows
(docs/architecture.md). ``compile_task`` builds it:

* the agents: for each required capability the best provider (``core.selection``), plus
  their dependencies, transitively; steps are listed in dependency order, then priority;
* one step per (agent, capability): an agent chosen for several of the required
  capabilities gets one step for each, chained in the order the request lists them (two
  operations of one agent never race); an agent pulled in as a dependency runs its first
  capability. A step is named after its agent, or ``agent-capability`` when its agent
  has several steps;
* ``needs``: the steps of the agent's dependencies that are in the task;
* ``input``: only the parameters the agent's input model declares for that capability
  (``AgentInputs.accepts``; an agent that declares none takes every parameter, as the
  guide's ``**kwargs`` agents do), as ``${{ params.parameters."name" }}`` expressions so
  values are never read as expressions themselves; then each input the agent declares it
  consumes from an upstream capability (``Consumes``), from the output of the dependency
  step that provides it (an upstream output wins over a parameter of the same name); and
  ``capability`` when the agent has several;
* ``failFast`` off: independent agents finish; dependents of a failed step are skipped.

The run records ``TaskRequest.as_params()`` as its params and ``task:<task_type>`` as its
workflow, so a resumed task recompiles the same workflow from its record.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devskyy.core.selection import AgentInfo, dependency_order, select_for
from devskyy.errors import DevskyyError
from devskyy.model.manifests import NAME_PATTERN, Priority, Workflow

TASK_PREFIX = "task:"
"""Run records of tasks name their workflow ``task:<task_type>`` (no manifest can)."""
DEFAULT_TIMEOUT = 3600.0
_NAME = re.compile(NAME_PATTERN)


class TaskError(DevskyyError):
    """A task request that cannot be compiled (bad task type, no capabilities)."""


@dataclass(frozen=True)
class Consumes:
    """An input an agent takes from the output of an upstream ``capability``.

    ``path`` is a dotted key path into that output (``article``); ``None`` passes the
    whole output (the fixer's ``scan_results`` is the scanner's whole report).
    """

    input: str
    capability: str
    path: str | None = None


@dataclass(frozen=True)
class AgentInputs:
    """What an agent declares about the inputs of one capability."""

    accepts: frozenset[str] | None = None
    consumes: tuple[Consumes, ...] = ()


@dataclass(frozen=True)
class TaskRequest:
    """The guide's four arguments, as recorded with the run."""

    task_type: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    required_capabilities: tuple[str, ...] = ()
    priority: Priority = Priority.MEDIUM

    def __post_init__(self) -> None:
        if not _NAME.match(self.task_type) or len(TASK_PREFIX + self.task_type) > 63:
            raise TaskError(
                f"task_type {self.task_type!r} must be lowercase letters, digits, '_' or '-', "
                "starting with a letter, at most 58 characters"
            )
        if not self.required_capabilities:
            raise TaskError("a task needs at least one required capability")

    @property
    def workflow_name(self) -> str:
        return TASK_PREFIX + self.task_type

    def as_params(self) -> dict[str, Any]:
        """The JSON the run records as its params."""
        return {
            "task_type": self.task_type,
            "parameters": dict(self.parameters),
            "required_capabilities": list(self.required_capabilities),
            "priority": self.priority.value,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TaskRequest:
        """Read back what ``as_params`` recorded."""
        return cls(
            str(params["task_type"]),
            dict(params.get("parameters") or {}),
            tuple(params.get("required_capabilities") or ()),
            Priority(params.get("priority", "medium")),
        )


InputsOf = Callable[[str, str], AgentInputs]
"""(agent name, capability) -> the agent's declarations for that capability."""


@dataclass(frozen=True)
class _Step:
    name: str
    agent: str
    capability: str


def compile_task(
    request: TaskRequest, agents: Mapping[str, AgentInfo], inputs_of: InputsOf
) -> Workflow:
    """The Workflow value that runs ``request`` (see the module docstring)."""
    order = dependency_order(select_for(request.required_capabilities, agents), agents)
    wanted: dict[str, list[str]] = {name: [] for name in order}
    for capability in request.required_capabilities:
        agent = _provider(capability, order, agents)
        if capability not in wanted[agent]:
            wanted[agent].append(capability)
    steps: list[_Step] = []
    for name in order:
        capabilities = wanted[name] or [agents[name].capabilities[0]]
        for capability in capabilities:
            label = name if len(capabilities) == 1 else f"{name}-{capability}"
            steps.append(_Step(label, name, capability))
    by_agent: dict[str, list[_Step]] = {}
    for step in steps:
        by_agent.setdefault(step.agent, []).append(step)
    given = list(request.parameters)
    documents = [_step_document(s, given, by_agent, agents, inputs_of) for s in steps]
    return Workflow.model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "Workflow",
            "metadata": {"name": request.task_type},
            "spec": {
                "description": f"task {request.task_type}: "
                + ", ".join(request.required_capabilities),
                "priority": request.priority.value,
                "timeoutSeconds": DEFAULT_TIMEOUT,
                "failFast": False,
                "steps": documents,
            },
        }
    )


def _provider(capability: str, order: Sequence[str], agents: Mapping[str, AgentInfo]) -> str:
    found = [n for n in order if capability in agents[n].capabilities]
    return min(found, key=lambda n: (agents[n].priority.rank, n))


def _step_document(
    step: _Step,
    given: Sequence[str],
    by_agent: Mapping[str, Sequence[_Step]],
    agents: Mapping[str, AgentInfo],
    inputs_of: InputsOf,
) -> dict[str, Any]:
    info = agents[step.agent]
    upstream = [s for dep in info.dependencies for s in by_agent.get(dep, ())]
    own = by_agent[step.agent]
    needs = [s.name for s in upstream]
    position = own.index(step)
    if position:
        needs.append(own[position - 1].name)
    declared = inputs_of(step.agent, step.capability)
    inputs: dict[str, Any] = {
        name: f"${{{{ params.parameters.{json.dumps(name)} }}}}"
        for name in given
        if declared.accepts is None or name in declared.accepts
    }
    for consumed in declared.consumes:
        source = next((s for s in upstream if s.capability == consumed.capability), None)
        if source is None:
            continue
        path = "".join(f".{json.dumps(p)}" for p in (consumed.path or "").split(".") if p)
        inputs[consumed.input] = f"${{{{ steps.{json.dumps(source.name)}.output{path} }}}}"
    if len(info.capabilities) > 1:
        inputs["capability"] = step.capability
    return {"name": step.name, "agent": step.agent, "needs": needs, "input": inputs}
