"""Checking agents as the runtime will build them: import the class, check its config.

``check_agent`` is the ``AgentCheck`` that ``validate --check-agents`` injects into the
(pure) set validation. For an agent whose module is under an allowed prefix it imports
``package.module``, requires ``Class`` to be a ``BaseAgent`` subclass and, when the class
declares a ``config_model``, validates ``spec.config`` with it exactly as
``BaseAgent.bind`` will. Each finding is a (JSON path, message) pair, so a typo in a
config key is reported at its ``file:line:column`` before anything is applied.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from pydantic import ValidationError

from devskyy.core.yaml_strict import JsonPath
from devskyy.extras import import_failure
from devskyy.model.manifests import Agent
from devskyy.runtime.agent import BaseAgent

_MODULE: JsonPath = ("spec", "module")
_CONFIG: JsonPath = ("spec", "config")


def load_agent_class(module_path: str) -> type[BaseAgent] | str:
    """The class named by ``package.module:Class``, or why it cannot be used."""
    module_name, _, class_name = module_path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure of the agent's own code
        return f"cannot import {module_name!r}: {import_failure(module_name, exc)}"
    cls = getattr(module, class_name, None)
    if cls is None:
        return f"module {module_name!r} has no attribute {class_name!r}"
    if not (isinstance(cls, type) and issubclass(cls, BaseAgent)):
        return f"{module_path!r} is not a BaseAgent subclass"
    return cls


def _config_problems(exc: ValidationError) -> list[tuple[JsonPath, str]]:
    found: list[tuple[JsonPath, str]] = []
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if isinstance(part, str | int))
        if error["type"] == "extra_forbidden" and loc:
            message = f"unknown field {loc[-1]!r}"
        elif error["type"] == "missing" and loc:
            message = f"missing required field {loc[-1]!r}"
        else:
            message = f"{error['msg']} (got {error['input']!r})"
        found.append(((*_CONFIG, *loc), message))
    return found


def check_agent(agent: Agent) -> Sequence[tuple[JsonPath, str]]:
    """Problems the runtime would meet building ``agent``: import, class, config."""
    loaded = load_agent_class(agent.spec.module)
    if isinstance(loaded, str):
        return [(_MODULE, loaded)]
    model = loaded.config_model
    if model is None:
        return []
    try:
        model.model_validate(dict(agent.spec.config))
    except ValidationError as exc:
        return _config_problems(exc)
    return []
