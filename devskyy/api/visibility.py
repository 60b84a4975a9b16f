"""Aggregated views show what the caller could read one by one (pure filters).

``GET /api/agents/{name}/health`` needs read on ``agents/{name}``; the aggregated views
(``registry/health``, ``orchestrator/health``, ``orchestrator/metrics``,
``orchestrator/dependencies``) need only read on ``registry``/``orchestrator``, so without
a filter a guest saw through them what it is refused one by one. Each function here
keeps the agents in ``readable`` and recomputes the totals from them, so the figures
reveal nothing about the others either.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from devskyy.runtime.agent_records import health_summary


def registry_health(report: dict[str, Any], readable: Collection[str]) -> dict[str, Any]:
    """``Registry.health_check_all`` limited to ``readable`` agents."""
    agents = {n: a for n, a in report["agents"].items() if n in readable}
    return {
        **report,
        "agents": agents,
        "total_agents": len(agents),
        "healthy_agents": sum(1 for a in agents.values() if a.get("healthy")),
    }


def orchestrator_health(report: dict[str, Any], readable: Collection[str]) -> dict[str, Any]:
    """``Orchestrator.get_orchestrator_health`` limited to ``readable`` agents."""
    agents = {n: a for n, a in report["agents"].items() if n in readable}
    open_circuits = [n for n in report.get("open_circuits", []) if n in readable]
    return {**report, **health_summary(agents, open_circuits)}


def agent_metrics(report: dict[str, Any], readable: Collection[str]) -> dict[str, Any]:
    """``Orchestrator.get_agent_metrics()`` (keyed by agent) limited to ``readable``."""
    return {n: m for n, m in report.items() if n in readable}


def dependency_graph(graph: dict[str, Any], readable: Collection[str]) -> dict[str, Any]:
    """The dependency graph limited to ``readable`` agents and the edges between them."""
    nodes = {
        n: {**node, "dependents": [d for d in node.get("dependents", []) if d in readable]}
        for n, node in graph["nodes"].items()
        if n in readable
    }
    order = graph.get("execution_order")
    if isinstance(order, list):
        order = [n for n in order if n in readable]
    return {
        **graph,
        "nodes": nodes,
        "edges": [e for e in graph.get("edges", []) if e[0] in readable and e[1] in readable],
        "execution_order": order,
        "missing": {n: m for n, m in graph.get("missing", {}).items() if n in readable},
    }
