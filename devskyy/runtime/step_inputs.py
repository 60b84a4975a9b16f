"""A step's JSON in and out: its input rendered from the run's context, its output checked.

The step-runner seam takes JSON only. A step's literal input is checked (and copied) once
per run session (``StepInputs``); an input without expressions is that copy, one with
expressions is rendered by ``core.expressions.render`` from
``{"params": …, "steps": {name: {"output": …, "status": …}}}``. A capability step of an
agent with several capabilities is told which one it asked for. An output is checked to
be a JSON object unless the caller vouches that its results are fresh JSON copies.
"""

from __future__ import annotations

from typing import Any

from devskyy.core.expressions import ExpressionError, render
from devskyy.core.jsonvalue import json_copy
from devskyy.errors import MissingInput
from devskyy.model.manifests import Agent, StepSpec, Workflow
from devskyy.runtime.run_services import NotSerializable


class StepInputs:
    """The steps' inputs of one run session (each step is launched once per session)."""

    def __init__(self, workflow: Workflow) -> None:
        self.not_json: dict[str, str] = {}
        # Inputs without expressions: their JSON copy is the rendered input (each step is
        # launched once per session, so no two attempts share it; retries copy it).
        self.literal: dict[str, dict[str, Any]] = {}
        for spec in workflow.spec.steps:
            try:
                copied = json_copy(spec.input)
            except (TypeError, ValueError) as exc:
                self.not_json[spec.name] = str(exc)
                continue
            if not any(_templated(v) for v in copied.values()):
                self.literal[spec.name] = copied

    def render(self, spec: StepSpec, context: dict[str, Any]) -> dict[str, Any]:
        """The step's input; ``MissingInput``/``ExpressionError`` name the step and input."""
        literal = self.literal.pop(spec.name, None)
        if literal is not None:
            return literal
        rendered: dict[str, Any] = {}
        for key, value in spec.input.items():
            try:
                rendered[key] = render(value, context)
            except MissingInput as exc:
                raise MissingInput(f"step {spec.name!r}: input {key!r}: {exc}") from None
            except ExpressionError as exc:
                raise ExpressionError(f"step {spec.name!r}: input {key!r}: {exc}") from None
        if spec.name in self.not_json:
            raise NotSerializable(
                f"step {spec.name!r}: input is not JSON: {self.not_json[spec.name]}"
            )
        # Rendered values come from JSON params and JSON-checked outputs; the literals were
        # checked once in __init__, so the whole input is JSON without another round trip.
        return rendered


def with_capability(
    spec: StepSpec, manifest: Agent | None, inputs: dict[str, Any]
) -> dict[str, Any]:
    """Tell an agent of several capabilities which one a ``capability:`` step asked for.

    The capability goes in the ``capability`` input (unless the step sets one); an agent
    with a single capability needs no such hint and gets none.
    """
    if spec.capability is None or "capability" in inputs:
        return inputs
    if manifest is None or len(manifest.spec.capabilities) < 2:
        return inputs
    return {**inputs, "capability": spec.capability}


def checked_output(spec: StepSpec, agent: str, output: Any) -> dict[str, Any]:
    """The JSON dict a step produced (a caller other than the orchestrator may err)."""
    if not isinstance(output, dict):
        raise NotSerializable(
            f"step {spec.name!r}: agent {agent!r} returned {type(output).__name__}, not a dict"
        )
    try:
        return dict(json_copy(output))
    except (TypeError, ValueError) as exc:
        raise NotSerializable(
            f"step {spec.name!r}: output of agent {agent!r} is not JSON: {exc}"
        ) from None


def _templated(value: Any) -> bool:
    """Whether a JSON value holds an expression anywhere (a ``${{`` in some string)."""
    if isinstance(value, str):
        return "${{" in value
    if isinstance(value, dict):
        return any(_templated(v) for v in value.values())
    if isinstance(value, list):
        return any(_templated(v) for v in value)
    return False
