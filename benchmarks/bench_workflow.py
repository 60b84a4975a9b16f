"""Per-step cost of a whole ``devskyy run`` (1,000-step chain and fan-out), records on.

Each figure is measured in the same process, interleaved, best of ``--repeat``:

* ``devskyy run``: the whole command, in-process through click (open the SQLite store,
  start the applied agents, run the workflow with every step's start and result recorded,
  print a progress line per step, close). Every step is a real agent call through the one
  path: the orchestrator's attempt executor (breaker, priority slot, timeout), the local
  step runner, a no-op ``BaseAgent`` (``NoopAgent`` below, applied from a manifest);
* the fixed cost is removed by subtracting a 1-step ``devskyy run``: per step =
  (run(N) - run(1)) / (N - 1);
* the baseline: a bare asyncio task per step (chained awaits / ``gather``), per step.

Peak memory (``tracemalloc``) of the whole command at N and 2N steps, minus the 1-step
run, per step: flat in N means the same bytes per step at both sizes. Each size is
measured on a store of its own with only its workflow applied (every ``devskyy run``
loads the live state, which would otherwise be every size's manifests: a fixed peak
that hides the run's own).

Target (issue 12): at most 10x the bare asyncio task per step. Exits 1 when missed.

Usage: ``.venv/bin/python benchmarks/bench_workflow.py [--steps 1000] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from devskyy.runtime.agent import BaseAgent

RATIO_TARGET = 10.0
SHAPES = ("chain", "fanout")


class NoopAgent(BaseAgent):
    """The agent of every step: returns at once, so what is left is devskyy's cost."""

    capabilities = ["noop"]

    def __init__(self) -> None:
        super().__init__("noop")

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        return {"i": kwargs.get("i")}


AGENT = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {name: noop}
spec:
  module: bench_workflow:NoopAgent
  capabilities: [noop]
  timeoutSeconds: 30
"""


def workflow_yaml(name: str, shape: str, steps: int) -> str:
    lines = [
        "apiVersion: devskyy.dev/v1",
        "kind: Workflow",
        f"metadata: {{name: {name}}}",
        "spec:",
        "  steps:",
    ]
    for i in range(steps):
        needs = f", needs: [s{i - 1}]" if shape == "chain" and i else ""
        lines.append(f"    - {{name: s{i}, agent: noop, input: {{i: {i}}}{needs}}}")
    return "\n".join(lines) + "\n"


async def noop_step(i: int) -> dict[str, Any]:
    return {"i": i}


async def plain_chain(steps: int) -> None:
    for i in range(steps):
        await asyncio.create_task(noop_step(i))


async def plain_fanout(steps: int) -> None:
    await asyncio.gather(*(asyncio.create_task(noop_step(i)) for i in range(steps)))


def timed(fn: Callable[[], object]) -> float:
    gc.collect()
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def peak_memory(fn: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def plain(shape: str, steps: int) -> Callable[[], object]:
    factory: Callable[[int], Coroutine[Any, Any, None]] = (
        plain_chain if shape == "chain" else plain_fanout
    )
    return lambda: asyncio.run(factory(steps))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    steps: int = args.steps
    sys.path.insert(0, str(Path(__file__).parent))  # the registry imports NoopAgent
    os.environ["DEVSKYY_ALLOWED_MODULES"] = "bench_workflow"
    from click.testing import CliRunner  # noqa: PLC0415 (after the environment is set)

    from devskyy.cli import main as devskyy  # noqa: PLC0415

    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tree = root / "manifests"
        tree.mkdir()
        (tree / "noop.yaml").write_text(AGENT)
        sizes = {"one": 1, **{f"{s}{steps}": steps for s in SHAPES}}
        sizes.update({f"{s}{2 * steps}": 2 * steps for s in SHAPES})
        for name, n in sizes.items():
            shape = "fanout" if name.startswith("fanout") else "chain"
            (tree / f"{name}.yaml").write_text(workflow_yaml(name, shape, n))
        url = f"sqlite:///{root / 'state.db'}"
        cli = CliRunner()
        applied = cli.invoke(devskyy, ["--state", url, "apply", str(tree)])
        assert applied.exit_code == 0, applied.output
        alone: dict[str, str] = {}  # a store per size with only its workflow applied
        for name in sizes:
            own = root / name
            own.mkdir()
            (own / "noop.yaml").write_text(AGENT)
            (own / f"{name}.yaml").write_text((tree / f"{name}.yaml").read_text())
            alone[name] = f"sqlite:///{root / name}.db"
            done = cli.invoke(devskyy, ["--state", alone[name], "apply", str(own)])
            assert done.exit_code == 0, done.output

        def run(name: str, store: str | None = None) -> Callable[[], object]:
            def go() -> None:
                result = cli.invoke(devskyy, ["--state", store or url, "run", name])
                assert result.exit_code == 0, result.output

            return go

        print(
            f"whole `devskyy run` (SQLite, records on, progress printed) minus a 1-step run, "
            f"per step; best of {args.repeat} interleaved"
        )
        print(
            f"{'shape':8} {'steps':>6} {'run us/step':>12} {'asyncio us/step':>16} "
            f"{'x asyncio':>9} {'peak KiB/step':>14} {'at 2N':>8}"
        )
        for shape in SHAPES:
            name = f"{shape}{steps}"
            runners = {"one": run("one"), name: run(name), "plain": plain(shape, steps)}
            best = dict.fromkeys(runners, float("inf"))
            for _ in range(args.repeat):  # interleaved: load spikes hit every runner alike
                for label, fn in runners.items():
                    best[label] = min(best[label], timed(fn))
            per_step = (best[name] - best["one"]) / (steps - 1)
            base = best["plain"] / steps
            ratio = per_step / base
            one = peak_memory(run("one", alone["one"]))
            mem = (peak_memory(run(name, alone[name])) - one) / steps
            twice = f"{shape}{2 * steps}"
            mem2 = (peak_memory(run(twice, alone[twice])) - one) / (2 * steps)
            print(
                f"{shape:8} {steps:6d} {per_step * 1e6:12.1f} {base * 1e6:16.2f} "
                f"{ratio:9.1f} {mem / 1024:14.2f} {mem2 / 1024:8.2f}"
            )
            if ratio > RATIO_TARGET:
                failures.append(f"{shape}: {ratio:.1f}x a bare asyncio task > {RATIO_TARGET:g}x")
    print(f"target: <= {RATIO_TARGET:g}x a bare asyncio task per step; memory per step flat")
    for failure in failures:
        print(f"MISSED: {failure}")
    print("PASS" if not failures else "FAIL")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
