"""CPU-bound workflow steps: the local runner against ``--runner dask`` with 2 worker processes.

One run measures, on one machine and one SQLite store:

Best of ``--repeat`` rounds (3), each running the three in turn:

1. ``local``: a fan-out workflow of N independent steps (default 200), each about 50 ms
   of SHA-256 hashing, through ``open_system(url)``: one process, so one core (the GIL);
2. ``dask``: the same workflow with ``runner="dask"`` on a LocalCluster of 2 worker
   processes (one thread each) started here: target speedup >= 1.6x;
3. ``bare``: the same hashing function submitted N times straight to the same cluster
   with ``client.submit(pure=False)`` and gathered: the floor. The Dask runner's per-step
   time next to it (target: at most 2x), and the per-step overhead in ms on no-op steps
   (devskyy's records, the JSON round trip, the agent call) next to a bare no-op submit.

The agent lives in this file; the workers import it as ``bench_distributed:HashAgent``
(this folder on their PYTHONPATH, ``bench_distributed`` an allowed module prefix).

    .venv/bin/python benchmarks/bench_distributed.py [--steps 200] [--ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from devskyy.runtime.agent import BaseAgent

HERE = Path(__file__).resolve().parent


def hash_work(rounds: int, seed: int) -> str:
    """``rounds`` chained SHA-256 digests of a 1 KiB block: pure CPU, GIL held."""
    digest = seed.to_bytes(8, "big") * 128
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest() * 32
    return digest[:8].hex()


def noop(rounds: int, seed: int) -> str:
    return f"{rounds}:{seed}"


class HashAgent(BaseAgent):
    """Hashes ``rounds`` times (``rounds=0``: a no-op step)."""

    def __init__(self) -> None:
        super().__init__(agent_name="Hash Agent", version="1.0.0")

    async def initialize(self) -> bool:
        self.status = BaseAgent.AgentStatus.HEALTHY
        return True

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        return {"digest": hash_work(int(kwargs["rounds"]), int(kwargs["seed"]))}


def calibrate(ms: float) -> int:
    """Rounds of ``hash_work`` that take about ``ms`` milliseconds here (best of 5)."""
    trial = 2000
    best = min(_timed(lambda: hash_work(trial, 1)) for _ in range(5))
    return max(1, round(trial * (ms / 1000.0) / best))


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def write_tree(folder: Path, steps: int, rounds: int) -> None:
    folder.mkdir(parents=True)
    lines = [
        "apiVersion: devskyy.dev/v1",
        "kind: Agent",
        "metadata: {name: hasher}",
        "spec:",
        "  module: bench_distributed:HashAgent",
        "  timeoutSeconds: 600",
        "---",
    ]
    for name, work in (("fan", rounds), ("noop", 0)):
        lines += [
            "apiVersion: devskyy.dev/v1",
            "kind: Workflow",
            f"metadata: {{name: {name}}}",
            "spec:",
            "  steps:",
        ]
        lines += [
            f"    - {{name: s{i}, agent: hasher, input: {{rounds: {work}, seed: {i}}}}}"
            for i in range(steps)
        ]
        lines.append("---")
    (folder / "bench.yaml").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")


async def run_workflow(url: str, name: str, **runner: Any) -> float:
    from devskyy.runtime.system import open_system  # noqa: PLC0415

    system = await open_system(url, **runner)
    try:
        start = time.perf_counter()
        record = await system.workflows.run(name, {})
        elapsed = time.perf_counter() - start
        assert record.status.value == "succeeded", record.error
        return elapsed
    finally:
        await system.close()


async def bare(client: Any, fn: Any, rounds: int, steps: int) -> float:
    start = time.perf_counter()
    futures = [client.submit(fn, rounds, i, pure=False) for i in range(steps)]
    await client.gather(futures)
    return time.perf_counter() - start


async def measure(url: str, steps: int, rounds: int, repeat: int) -> dict[str, float]:
    """Best of ``repeat`` rounds, each running local, dask and bare in turn (interleaved:
    a machine whose load changes during the run affects the three alike)."""
    from devskyy.runtime.dask_runner import start_dask  # noqa: PLC0415

    start = time.perf_counter()
    cluster = await start_dask(None, n_workers=2)
    figures: dict[str, float] = {"cluster_start": time.perf_counter() - start}
    try:
        dask = {"runner": "dask", "scheduler": cluster.address}
        await run_workflow(url, "noop", **dask)  # warm: agents built on each worker
        await bare(cluster.client, hash_work, rounds, 4)
        rounds_of: dict[str, list[float]] = {}
        for _ in range(repeat):
            for name, figure in (
                ("local", run_workflow(url, "fan")),
                ("dask", run_workflow(url, "fan", **dask)),
                ("bare", bare(cluster.client, hash_work, rounds, steps)),
                ("dask_noop", run_workflow(url, "noop", **dask)),
                ("bare_noop", bare(cluster.client, noop, 0, steps)),
            ):
                rounds_of.setdefault(name, []).append(await figure)
        figures.update({name: min(times) for name, times in rounds_of.items()})
    finally:
        await cluster.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--ms", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=3, help="best of N interleaved rounds")
    args = parser.parse_args()
    # The workers (spawned processes) import this file's agent by module path.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p
    )
    os.environ["DEVSKYY_ALLOWED_MODULES"] = "bench_distributed"
    sys.path.insert(0, str(HERE))
    rounds = calibrate(args.ms)
    one = min(_timed(lambda: hash_work(rounds, 7)) for _ in range(5))
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        write_tree(tree, args.steps, rounds)
        url = f"sqlite:///{Path(tmp) / 'state.db'}"
        from devskyy.adapters.db import open_engine  # noqa: PLC0415
        from devskyy.adapters.state_store import SqlStateStore  # noqa: PLC0415
        from devskyy.runtime.reconciler import apply_tree  # noqa: PLC0415

        engine = open_engine(url)
        try:
            apply_tree(tree, SqlStateStore(engine))
        finally:
            engine.dispose()
        f = asyncio.run(measure(url, args.steps, rounds, args.repeat))
    n = args.steps
    speedup = f["local"] / f["dask"]
    ratio = f["dask"] / f["bare"]
    print(
        f"{n} steps of {one * 1000:.1f} ms hashing each ({rounds} rounds); 2 worker processes; "
        f"best of {args.repeat} interleaved rounds; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"  LocalCluster start         {f['cluster_start']:7.2f} s")
    print(f"  local runner (1 process)   {f['local']:7.2f} s   {n / f['local']:6.1f} steps/s")
    print(f"  dask runner  (2 workers)   {f['dask']:7.2f} s   {n / f['dask']:6.1f} steps/s")
    print(f"  bare client.submit         {f['bare']:7.2f} s   {n / f['bare']:6.1f} steps/s")
    print(f"  speedup dask vs local      {speedup:7.2f} x   (target >= 1.6)")
    print(f"  per step, dask vs bare     {ratio:7.2f} x   (target <= 2.0)")
    noop_ms = 1000 * f["dask_noop"] / n
    bare_noop_ms = 1000 * f["bare_noop"] / n
    print(f"  no-op steps: dask runner   {noop_ms:7.2f} ms/step ({1000 / noop_ms:.0f} steps/s)")
    rate = 1000 / bare_noop_ms
    print(f"  no-op tasks: bare submit   {bare_noop_ms:7.2f} ms/task ({rate:.0f} tasks/s)")
    ok = speedup >= 1.6 and ratio <= 2.0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
