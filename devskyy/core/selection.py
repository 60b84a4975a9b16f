"""Pure choices of the orchestrator: which agents a task needs, in what order, on which replica.

* ``select_for(capabilities, agents)``: for each required capability, the registered agent
  that provides it with the highest priority (then the smallest name); then every
  dependency of a chosen agent, transitively, since a dependent must get its
  dependency's result. Unknown capabilities and unregistered dependencies are errors.
* ``dependency_order(names, agents)``: a topological order (dependencies first); among
  agents that are ready at the same time, higher priority first, then by name. A cycle
  raises ``ExecutionError`` naming the cycle as a path.
* ``least_loaded(loads)``: the replica with the fewest outstanding calls; ties go to the
  one that has served the fewest calls, then the lowest index (round-robin when idle).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from devskyy.errors import ExecutionError, NotFound
from devskyy.model.manifests import Priority


@dataclass(frozen=True)
class AgentInfo:
    """What the orchestrator knows about an agent when choosing."""

    name: str
    capabilities: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    priority: Priority = Priority.MEDIUM


def providers(capability: str, agents: Mapping[str, AgentInfo]) -> list[str]:
    """Agents offering ``capability``, best first (priority, then name)."""
    found = [a for a in agents.values() if capability in a.capabilities]
    return [a.name for a in sorted(found, key=lambda a: (a.priority.rank, a.name))]


def select_for(capabilities: Iterable[str], agents: Mapping[str, AgentInfo]) -> list[str]:
    """The agents a task with these capabilities runs, dependencies included, sorted."""
    chosen: set[str] = set()
    for capability in capabilities:
        best = providers(capability, agents)
        if not best:
            raise NotFound(f"no registered agent has capability {capability!r}")
        chosen.add(best[0])
    pending = sorted(chosen)
    while pending:
        name = pending.pop()
        for dep in agents[name].dependencies:
            if dep not in agents:
                raise NotFound(f"agent {name!r} depends on {dep!r}, which is not registered")
            if dep not in chosen:
                chosen.add(dep)
                pending.append(dep)
    return sorted(chosen)


def dependency_order(names: Iterable[str], agents: Mapping[str, AgentInfo]) -> list[str]:
    """Dependencies first; ties by priority then name. Only edges inside ``names`` count."""
    selected = set(names)
    waiting = {n: {d for d in agents[n].dependencies if d in selected} for n in selected}
    dependents: dict[str, list[str]] = {n: [] for n in selected}
    for name, deps in waiting.items():
        for dep in deps:
            dependents[dep].append(name)
    ready = [(agents[n].priority.rank, n) for n, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for child in dependents[name]:
            waiting[child].discard(name)
            if not waiting[child]:
                heapq.heappush(ready, (agents[child].priority.rank, child))
    if len(order) < len(selected):
        raise ExecutionError(f"dependency cycle: {' -> '.join(_cycle(waiting))}")
    return order


def _cycle(waiting: Mapping[str, set[str]]) -> list[str]:
    """One cycle among the agents still waiting, as a closed path."""
    start = min(n for n, deps in waiting.items() if deps)
    path = [start]
    seen = {start: 0}
    node = start
    while True:
        node = min(waiting[node])
        if node in seen:
            return [*path[seen[node] :], node]
        seen[node] = len(path)
        path.append(node)


def least_loaded(loads: Sequence[tuple[int, int]]) -> int:
    """Index of the replica to use, from ``(outstanding, served)`` per replica."""
    if not loads:
        raise ValueError("no replicas to choose from")
    return min(range(len(loads)), key=lambda i: (loads[i][0], loads[i][1], i))
