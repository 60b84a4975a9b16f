"""Per-step overhead of the workflow engine on 1,000-step no-op workflows.

Two shapes, a chain (each step needs the previous one) and a 1,000-wide fan-out (every
step independent), each run:

* with plain asyncio (one task per step, chained awaits / ``gather``): the baseline;
* through ``WorkflowEngine`` with the in-memory run store;
* through ``WorkflowEngine`` with the SQL run store on SQLite in a temp dir (run records
  on: every step's start and result written, each result committed before dependents).

The agent is a no-op ``call_agent``, so the figures are the engine's own cost. Prints
microseconds per step, the ratio to asyncio, and peak traced memory (``tracemalloc``).
Targets (issue 3): with run records on, within 10x of plain asyncio and under 1 ms per
step (100x below the ~0.1 s per task that Prefect publishes). Exits 1 when missed.

Usage: ``.venv/bin/python benchmarks/bench_workflow.py [--steps 1000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from devskyy.adapters.clock import SystemClock
from devskyy.adapters.db import open_engine
from devskyy.adapters.run_store import MemoryRunStore, RunStore, SqlRunStore
from devskyy.model.manifests import Priority, Workflow
from devskyy.model.runs import RunStatus
from devskyy.runtime.workflows import DEFAULT_COMMIT_WINDOW, WorkflowEngine

PREFECT_PER_TASK = 0.1  # seconds: the per-task overhead Prefect's own docs/benchmarks cite
RATIO_TARGET = 10.0
ABSOLUTE_TARGET = PREFECT_PER_TASK / 100


class NoopCaller:
    """An agent that does nothing: what is left is the engine's overhead."""

    async def call_agent(
        self,
        name: str,
        kwargs: dict[str, Any],
        *,
        timeout: float | None = None,
        priority: Priority | None = None,
    ) -> dict[str, Any]:
        return {"ok": True}

    def resolve(self, capability: str) -> str:
        return capability


def make_workflow(shape: str, steps: int) -> Workflow:
    specs: list[dict[str, Any]] = []
    for i in range(steps):
        spec: dict[str, Any] = {"name": f"s{i}", "agent": "noop", "input": {"i": i}}
        if shape == "chain" and i:
            spec["needs"] = [f"s{i - 1}"]
        specs.append(spec)
    return Workflow.model_validate(
        {
            "apiVersion": "devskyy.dev/v1",
            "kind": "Workflow",
            "metadata": {"name": shape},
            "spec": {"steps": specs},
        }
    )


async def noop_step(i: int) -> dict[str, Any]:
    return {"ok": True, "i": i}


async def plain_chain(steps: int) -> None:
    for i in range(steps):
        await asyncio.create_task(noop_step(i))


async def plain_fanout(steps: int) -> None:
    await asyncio.gather(*(asyncio.create_task(noop_step(i)) for i in range(steps)))


def timed(factory: Callable[[], Coroutine[Any, Any, Any]]) -> float:
    gc.collect()
    began = time.perf_counter()
    asyncio.run(factory())
    return time.perf_counter() - began


def peak_memory(factory: Callable[[], Coroutine[Any, Any, Any]]) -> int:
    """Peak memory traced by ``tracemalloc`` during one run."""
    gc.collect()
    tracemalloc.start()
    asyncio.run(factory())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def engine_runner(
    store: RunStore, workflow: Workflow, window: float
) -> Callable[[], Coroutine[Any, Any, Any]]:
    engine = WorkflowEngine(
        NoopCaller(), store, SystemClock(), {workflow.name: workflow}.get, commit_interval=window
    )

    async def one() -> None:
        record = await engine.run(workflow.name, {})
        assert record.status is RunStatus.SUCCEEDED, record.error

    return one


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    steps: int = args.steps
    failures: list[str] = []
    print(
        f"{steps}-step no-op workflows; best of {args.repeat} interleaved runs; "
        f"default commit window {DEFAULT_COMMIT_WINDOW * 1e3:g} ms"
    )
    header = (
        f"{'shape':8} {'runner':34} {'total ms':>9} {'us/step':>8} {'x asyncio':>9} {'peak MiB':>8}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        db = open_engine(f"sqlite:///{Path(tmp) / 'state.db'}")
        sql_store = SqlRunStore(db)
        for shape, plain in (("chain", plain_chain), ("fan-out", plain_fanout)):
            workflow = make_workflow(shape.replace("-", ""), steps)
            runners: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {
                "plain asyncio": functools.partial(plain, steps),
                "engine, memory store": engine_runner(
                    MemoryRunStore(), workflow, DEFAULT_COMMIT_WINDOW
                ),
                "engine, sqlite (default)": engine_runner(
                    sql_store, workflow, DEFAULT_COMMIT_WINDOW
                ),
                "engine, sqlite, commit every step": engine_runner(sql_store, workflow, 0.0),
            }
            best = dict.fromkeys(runners, float("inf"))
            for _ in range(args.repeat):  # interleaved, so load spikes hit every runner alike
                for label, factory in runners.items():
                    best[label] = min(best[label], timed(factory))
            base = best["plain asyncio"]
            for label, factory in runners.items():
                elapsed = best[label]
                per_step = elapsed / steps
                ratio = elapsed / base
                peak = peak_memory(factory)
                print(
                    f"{shape:8} {label:34} {elapsed * 1e3:9.1f} {per_step * 1e6:8.1f} "
                    f"{ratio:9.1f} {peak / 2**20:8.2f}"
                )
                if label == "engine, sqlite (default)":
                    if ratio > RATIO_TARGET:
                        failures.append(f"{shape}: {ratio:.1f}x plain asyncio > {RATIO_TARGET:g}x")
                    if per_step > ABSOLUTE_TARGET:
                        failures.append(
                            f"{shape}: {per_step * 1e3:.3f} ms per step > "
                            f"{ABSOLUTE_TARGET * 1e3:g} ms"
                        )
        db.dispose()
    print(
        f"targets with run records on (sqlite, default settings): <= {RATIO_TARGET:g}x plain "
        f"asyncio, <= {ABSOLUTE_TARGET * 1e3:g} ms/step "
        f"(Prefect ~{PREFECT_PER_TASK:g} s/task / 100)"
    )
    for failure in failures:
        print(f"MISSED: {failure}")
    print("PASS" if not failures else "FAIL")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
