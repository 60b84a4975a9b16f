"""Benchmark: the orchestrator's per-call overhead next to plain asyncio, in the same run.

Each figure is microseconds per call of a no-op agent (best of ``--repeat`` runs):

* ``plain``: ``await agent.execute_core_function()`` on an undecorated coroutine function;
* ``tracked``: the same call on a ``BaseAgent`` (duration, window stats, anomaly checks);
* ``call_agent``: one orchestrator attempt (breaker, least-loaded replica among 4,
  timeout scope, agent and orchestrator statistics);
* ``call_with_retry``: the same through the priority queue with the retry loop;
* ``execute_task``: a two-agent task (dependency passing, history record in memory).

    .venv/bin/python benchmarks/bench_orchestrator.py [--calls N] [--repeat R]
"""

# ruff: noqa: PLC0415 (the package is imported inside main() to keep --help instant)

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def per_call(calls: int, repeat: int, fn: Callable[[], Awaitable[Any]]) -> float:
    """Best-of-``repeat`` microseconds per call of ``fn``."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(calls):
            await fn()
        best = min(best, time.perf_counter() - started)
    return best / calls * 1e6


async def run(calls: int, repeat: int) -> dict[str, float]:
    from devskyy.adapters.clock import SystemClock
    from devskyy.runtime.agent import AgentContext, BaseAgent
    from devskyy.runtime.orchestrator import Orchestrator

    class Noop(BaseAgent):
        capabilities = ["noop"]

        def __init__(self) -> None:
            super().__init__("noop")

        async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
            return {}

    class Plain:
        async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
            return {}

    clock = SystemClock()
    orch = Orchestrator(clock)
    for name, caps, deps in (("noop", ["noop"], []), ("after", ["after"], ["noop"])):
        for _ in range(4 if name == "noop" else 1):
            agent = Noop()
            agent.bind(AgentContext(name=name, clock=clock))
            await orch.register_agent(agent, caps, deps)
    single = Noop()
    single.bind(AgentContext(name="single", clock=clock))
    plain = Plain()
    return {
        "plain": await per_call(calls, repeat, plain.execute_core_function),
        "tracked": await per_call(calls, repeat, single.execute_core_function),
        "call_agent": await per_call(calls, repeat, lambda: orch.call_agent("noop", {})),
        "call_with_retry": await per_call(calls, repeat, lambda: orch.call_with_retry("noop", {})),
        "execute_task": await per_call(
            max(calls // 10, 1), repeat, lambda: orch.execute_task("t", {}, ["after"])
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    figures = asyncio.run(run(args.calls, args.repeat))
    base = figures["plain"]
    for name, micros in figures.items():
        print(f"{name:>16}: {micros:8.2f} us/call  ({micros / base:6.1f}x plain)")


if __name__ == "__main__":
    main()
