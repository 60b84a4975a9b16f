"""devskyy: a declarative, GitOps-driven runtime for multi-agent systems.

The stable public names are re-exported here and imported lazily, so that
``import devskyy`` (and ``devskyy --help``) stays cheap. ``tests/test_exports.py``
guards ``__all__``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names, typed, for mypy and editors; imported lazily at run time
    from devskyy.core.tasks import Consumes
    from devskyy.errors import DevskyyError, ManifestError
    from devskyy.model.manifests import Agent, Priority, Role, RoleBinding, Workflow
    from devskyy.model.runs import RunRecord, RunStatus, StepStatus
    from devskyy.runtime.agent import AgentStatus, BaseAgent
    from devskyy.runtime.orchestrator import ExecutionPriority, Orchestrator
    from devskyy.runtime.registry import Registry
    from devskyy.runtime.security import SecurityManager, SecurityRole
    from devskyy.runtime.step_runner import StepRunner
    from devskyy.runtime.system import System, open_system
    from devskyy.runtime.workflows import WorkflowEngine

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Consumes": "devskyy.core.tasks",
    "StepRunner": "devskyy.runtime.step_runner",
    "DevskyyError": "devskyy.errors",
    "ManifestError": "devskyy.errors",
    "Agent": "devskyy.model.manifests",
    "Workflow": "devskyy.model.manifests",
    "Role": "devskyy.model.manifests",
    "RoleBinding": "devskyy.model.manifests",
    "Priority": "devskyy.model.manifests",
    "BaseAgent": "devskyy.runtime.agent",
    "AgentStatus": "devskyy.runtime.agent",
    "ExecutionPriority": "devskyy.runtime.orchestrator",
    "Orchestrator": "devskyy.runtime.orchestrator",
    "Registry": "devskyy.runtime.registry",
    "System": "devskyy.runtime.system",
    "open_system": "devskyy.runtime.system",
    "WorkflowEngine": "devskyy.runtime.workflows",
    "RunRecord": "devskyy.model.runs",
    "RunStatus": "devskyy.model.runs",
    "StepStatus": "devskyy.model.runs",
    "SecurityManager": "devskyy.runtime.security",
    "SecurityRole": "devskyy.runtime.security",
}

__all__ = [
    "Agent",
    "AgentStatus",
    "BaseAgent",
    "Consumes",
    "DevskyyError",
    "ExecutionPriority",
    "ManifestError",
    "Orchestrator",
    "Priority",
    "Registry",
    "Role",
    "RoleBinding",
    "RunRecord",
    "RunStatus",
    "SecurityManager",
    "SecurityRole",
    "StepRunner",
    "StepStatus",
    "System",
    "Workflow",
    "WorkflowEngine",
    "__version__",
    "open_system",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'devskyy' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
