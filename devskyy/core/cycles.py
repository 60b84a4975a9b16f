"""Cycles and reachability in small name graphs (agent dependencies, step ``needs``).

Pure. A graph is a mapping ``node -> [nodes it depends on]``. ``cycles`` answers the
common case (no cycle) with the standard library's topological sorter, and only then
asks networkx for the strongly connected components, so that validating a clean tree
does not pay networkx's import. Each cycle is reported once, as the shortest loop
through its smallest name, starting there: ``["a", "b"]`` prints as ``a -> b -> a``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from graphlib import CycleError, TopologicalSorter


def has_cycle(edges: Mapping[str, Sequence[str]]) -> bool:
    """True when following the edges can come back to a node."""
    try:
        TopologicalSorter(edges).prepare()
    except CycleError:
        return True
    return False


def cycles(edges: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """One cycle per strongly connected component that has one, sorted by first node."""
    if not has_cycle(edges):
        return []
    import networkx as nx  # noqa: PLC0415 - only paid for when there is a cycle

    graph = nx.DiGraph()
    for node, targets in edges.items():
        graph.add_node(node)
        graph.add_edges_from((node, target) for target in targets)
    found: list[list[str]] = []
    for component in nx.strongly_connected_components(graph):
        start = min(component)
        if len(component) == 1 and not graph.has_edge(start, start):
            continue
        if graph.has_edge(start, start):
            found.append([start])
            continue
        sub = graph.subgraph(component)
        best: list[str] | None = None
        for successor in sorted(sub.successors(start)):
            path = nx.shortest_path(sub, successor, start)
            loop = [start, *path[:-1]]
            if best is None or len(loop) < len(best):
                best = loop
        if best is not None:
            found.append(best)
    return sorted(found)


def reachable(edges: Mapping[str, Sequence[str]], start: str) -> set[str]:
    """Every node reachable from ``start`` (not ``start`` itself unless on a cycle)."""
    seen: set[str] = set()
    todo = list(edges.get(start, ()))
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        todo.extend(edges.get(node, ()))
    return seen
