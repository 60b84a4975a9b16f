"""The public API is small and deliberate: a test guards ``devskyy.__all__``."""

from __future__ import annotations

import subprocess
import sys

import pytest

import devskyy


def test_all_names_resolve() -> None:
    for name in devskyy.__all__:
        assert getattr(devskyy, name) is not None, name


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError) as err:
        devskyy.nope  # type: ignore[attr-defined]  # noqa: B018
    assert str(err.value) == "module 'devskyy' has no attribute 'nope'"


def test_public_api_is_exactly_this() -> None:
    # Adding or removing a public name is a decision: change this list on purpose.
    assert sorted(devskyy.__all__) == [
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
    assert sorted(devskyy.__all__) == sorted(["__version__", *devskyy._EXPORTS])


def test_import_is_lazy() -> None:
    # ``import devskyy`` must not pull in the runtime (it keeps ``devskyy --help`` fast).
    code = "import sys, devskyy; print(any(m.startswith('devskyy.runtime') for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
