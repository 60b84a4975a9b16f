"""Pure agent selection: capabilities, dependencies, order, replica choice."""

from __future__ import annotations

import pytest

from devskyy.core.selection import (
    AgentInfo,
    dependency_order,
    least_loaded,
    providers,
    select_for,
)
from devskyy.errors import ExecutionError, NotFound
from devskyy.model.manifests import Priority

AGENTS = {
    a.name: a
    for a in [
        AgentInfo("scanner", ("scan",), (), Priority.HIGH),
        AgentInfo("fast_scanner", ("scan",), (), Priority.CRITICAL),
        AgentInfo("fixer", ("fix",), ("scanner",), Priority.HIGH),
        AgentInfo("seo", ("seo",), ("claude",), Priority.MEDIUM),
        AgentInfo("claude", ("content",), (), Priority.MEDIUM),
        AgentInfo("security", ("security",), (), Priority.CRITICAL),
        AgentInfo("learner", ("learn",), (), Priority.LOW),
    ]
}


def test_providers_best_first() -> None:
    assert providers("scan", AGENTS) == ["fast_scanner", "scanner"]
    assert providers("nothing", AGENTS) == []


def test_select_includes_dependencies_transitively() -> None:
    assert select_for(["fix"], AGENTS) == ["fixer", "scanner"]
    assert select_for(["seo", "learn"], AGENTS) == ["claude", "learner", "seo"]
    assert select_for([], AGENTS) == []


def test_select_errors() -> None:
    with pytest.raises(NotFound, match=r"^no registered agent has capability 'fly'$"):
        select_for(["fly"], AGENTS)
    broken = {**AGENTS, "x": AgentInfo("x", ("x",), ("ghost",))}
    with pytest.raises(NotFound, match=r"^agent 'x' depends on 'ghost', which is not registered$"):
        select_for(["x"], broken)


def test_order_dependencies_then_priority_then_name() -> None:
    names = ["learner", "seo", "claude", "security", "fixer", "scanner"]
    assert dependency_order(names, AGENTS) == [
        "security",
        "scanner",
        "fixer",
        "claude",
        "seo",
        "learner",
    ]


def test_cycle_is_reported_as_a_path() -> None:
    cyclic = {
        "a": AgentInfo("a", (), ("c",)),
        "b": AgentInfo("b", (), ("a",)),
        "c": AgentInfo("c", (), ("b",)),
        "d": AgentInfo("d", (), ()),
    }
    with pytest.raises(ExecutionError, match=r"^dependency cycle: a -> c -> b -> a$"):
        dependency_order(cyclic, cyclic)


def test_least_loaded() -> None:
    assert least_loaded([(1, 0), (0, 5), (0, 3)]) == 2
    assert least_loaded([(0, 1), (0, 1), (0, 0)]) == 2
    assert least_loaded([(2, 0), (2, 0)]) == 0
    with pytest.raises(ValueError, match=r"^no replicas to choose from$"):
        least_loaded([])
