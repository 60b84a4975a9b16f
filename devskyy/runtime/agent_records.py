"""The orchestrator's per-agent records and the reports built from them.

``Replica`` (an instance and its load), ``AgentEntry`` (everything kept per agent name:
its breaker cell for the attempt executor, its statistics), and the JSON reports that
``Orchestrator.get_agent_metrics``, ``get_dependency_graph`` and
``get_orchestrator_health`` return. Which errors count against a breaker is decided once,
by ``RetryPolicy.classify`` (``core.retry``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devskyy.core.breaker import Breaker
from devskyy.core.retry import RetryPolicy
from devskyy.core.selection import AgentInfo, dependency_order
from devskyy.core.stats import CallTracker
from devskyy.errors import ExecutionError
from devskyy.runtime.agent import AgentStatus, BaseAgent

_LIVE = (AgentStatus.HEALTHY, AgentStatus.DEGRADED, AgentStatus.RECOVERING)


@dataclass
class Replica:
    """One instance of an agent and its load."""

    agent: BaseAgent
    outstanding: int = 0
    served: int = 0
    _idle: list[asyncio.Future[None]] = field(default_factory=list, repr=False)
    # Whether the agent has a headline of its own to give (BaseAgent's says nothing):
    # the runner asks only then, once per call.
    says_headline: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        agent = self.agent
        self.says_headline = (
            "headline" in vars(agent) or type(agent).headline is not BaseAgent.headline
        )

    def idle(self) -> asyncio.Future[None]:
        """A future that completes when no call is in flight on this replica."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.outstanding:
            self._idle.append(future)
        else:
            future.set_result(None)
        return future

    def finished_one(self) -> None:
        self.outstanding -= 1
        if not self.outstanding:
            for future in self._idle:
                if not future.done():
                    future.set_result(None)
            self._idle.clear()


@dataclass
class AgentEntry:
    """Everything the orchestrator keeps per agent name."""

    info: AgentInfo
    replicas: list[Replica]
    retry: RetryPolicy
    breaker: Breaker
    timeout: float | None
    tracker: CallTracker = field(default_factory=CallTracker)
    timeouts: int = 0
    rejected: int = 0
    observe: Callable[[float, str, BaseException | None], None] | None = field(
        default=None, repr=False
    )

    def refused(self, retry_after: float) -> str:
        """The ``CircuitOpen`` message when this agent's breaker refuses a call."""
        return (
            f"circuit breaker for agent {self.info.name!r} is open; retry after {retry_after:.1f}s"
        )


def agent_metrics(name: str, entry: AgentEntry, now: float) -> dict[str, Any]:
    """One agent's statistics, breaker and replicas (``now`` is monotonic time)."""
    stats = entry.tracker.snapshot().as_dict()
    return {
        "agent_name": name,
        **stats,
        "average_response_time": stats["mean_response_time"],
        "timeouts": entry.timeouts,
        "rejected_by_breaker": entry.rejected,
        "circuit_breaker": entry.breaker.describe(now),
        "circuit_open": entry.breaker.is_open(now),
        "priority": entry.info.priority.value,
        "capabilities": list(entry.info.capabilities),
        "dependencies": list(entry.info.dependencies),
        "replicas": [
            {
                "index": i,
                "outstanding": r.outstanding,
                "served": r.served,
                "status": r.agent.status.value,
            }
            for i, r in enumerate(entry.replicas)
        ],
    }


def dependency_graph(infos: Mapping[str, AgentInfo]) -> dict[str, Any]:
    """Nodes, edges (dependency -> dependent), run order, and unregistered dependencies."""
    try:
        order: list[str] | str = dependency_order(infos, infos)
    except ExecutionError as exc:
        order = str(exc)
    return {
        "nodes": {
            n: {
                "dependencies": list(i.dependencies),
                "dependents": sorted(m for m, j in infos.items() if n in j.dependencies),
                "priority": i.priority.value,
                "capabilities": list(i.capabilities),
            }
            for n, i in sorted(infos.items())
        },
        "edges": sorted([d, n] for n, i in infos.items() for d in i.dependencies),
        "execution_order": order,
        "missing": {
            n: sorted(d for d in i.dependencies if d not in infos)
            for n, i in sorted(infos.items())
            if any(d not in infos for d in i.dependencies)
        },
    }


def agents_health(entries: Mapping[str, AgentEntry], now: float) -> dict[str, Any]:
    """Overall status and each agent's status, replicas and breaker state."""
    agents: dict[str, Any] = {}
    for name, entry in sorted(entries.items()):
        statuses = [r.agent.status for r in entry.replicas]
        agents[name] = {
            "status": best_status(statuses).value,
            "replicas": len(statuses),
            "live_replicas": sum(s in _LIVE for s in statuses),
            "circuit_breaker": entry.breaker.state_at(now).value,
        }
    open_circuits = [n for n, e in sorted(entries.items()) if e.breaker.is_open(now)]
    return health_summary(agents, open_circuits)


def health_summary(agents: dict[str, Any], open_circuits: list[str]) -> dict[str, Any]:
    """The overall status and totals of these agents' health entries.

    ``idle`` without agents, ``degraded`` when one has no live replica or an open
    breaker, else ``healthy``. Shared by the orchestrator's report and the API's view
    of it limited to what a caller may read, so both decide the status alike.
    """
    # An entry without ``live_replicas`` counts as usable, as the API's view always had it.
    unusable = [n for n, a in agents.items() if a.get("live_replicas", 1) == 0]
    if not agents:
        status = "idle"
    elif unusable or open_circuits:
        status = "degraded"
    else:
        status = "healthy"
    return {
        "status": status,
        "total_agents": len(agents),
        "healthy_agents": len(agents) - len(unusable),
        "open_circuits": open_circuits,
        "agents": agents,
    }


_SEVERITY = [
    AgentStatus.FAILED,
    AgentStatus.INITIALIZING,
    AgentStatus.RECOVERING,
    AgentStatus.DEGRADED,
    AgentStatus.HEALTHY,
]


def best_status(statuses: list[AgentStatus]) -> AgentStatus:
    """An agent's status is its best replica's (one live replica keeps it serving)."""
    return max(statuses, key=_SEVERITY.index) if statuses else AgentStatus.FAILED
