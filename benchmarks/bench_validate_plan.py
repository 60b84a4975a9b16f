"""Benchmark: load + validate (+ plan) 1,000 agent manifests, and a cold ``devskyy --help``.

The floor is bare ``yaml.load`` with the C loader (``CSafeLoader``) of the same files,
read in the same run: strict loading and validation cannot beat it, and the ratio says
what the checks cost. Peak memory is measured in a separate pass with ``tracemalloc``
(which slows execution, so the timings come from passes without it).

Targets (issue 2): validate + plan of 1,000 agents under 1 s; cold ``devskyy --help``
under 0.3 s. The script exits 1 when a target is missed by more than 2x.

    .venv/bin/python benchmarks/bench_validate_plan.py [--agents N] [--repeat R]
"""

# ruff: noqa: PLC0415 (the package is imported inside main() to time the import)

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

TARGET_VALIDATE_PLAN_S = 1.0
TARGET_HELP_S = 0.3
SLACK = 2.0

AGENT = """\
# yaml-language-server: $schema=../../schemas/agent.json
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: {name}
  labels:
    team: team-{team}
spec:
  module: devskyy.agents.generated.mod_{index}:Agent{index}
  version: "2.0.{index}"
  description: Generated agent number {index} for the validation benchmark.
  priority: {priority}
  capabilities:
    - cap_{index}
    - shared_{team}
  dependencies: [{deps}]
  replicas: 2
  timeoutSeconds: 120
  retry:
    maxAttempts: 4
    initialIntervalSeconds: 0.5
    backoffCoefficient: 2
    maximumIntervalSeconds: 30
    jitter: 0.1
    nonRetryableErrors: [ValueError]
  circuitBreaker:
    failureThreshold: 5
    resetTimeoutSeconds: 60
  rateLimit:
    requests: 100
    windowSeconds: 60
  config:
    endpoint: https://example.invalid/{index}
    batch: {index}
"""


def generate(folder: Path, count: int) -> None:
    """``count`` valid agents in ``folder/agents``; each depends on up to two earlier ones."""
    priorities = ("critical", "high", "medium", "low")
    target = folder / "agents"
    target.mkdir(parents=True)
    for i in range(count):
        deps = [f"agent_{j:04d}" for j in (i - 1, i // 2) if 0 <= j < i]
        text = AGENT.format(
            name=f"agent_{i:04d}",
            index=i,
            team=i % 10,
            priority=priorities[i % 4],
            deps=", ".join(sorted(set(deps))),
        )
        (target / f"agent_{i:04d}.yaml").write_text(text, encoding="utf-8")


def best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of ``repeat`` runs (seconds) and the last result."""
    times: list[float] = []
    result: Any = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def peak_memory(fn: Callable[[], Any]) -> int:
    """Peak bytes allocated by Python while ``fn`` runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def bare_yaml(folder: Path) -> list[Any]:
    """The floor: read every file and ``yaml.load`` it with the C loader (kept, like ours)."""
    docs: list[Any] = []
    for path in sorted(folder.rglob("*.yaml")):
        docs.extend(yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader))
    return docs


def cold_help() -> float:
    """Median wall time of ``devskyy --help`` in a fresh interpreter (5 runs)."""
    script = Path(sys.executable).with_name("devskyy")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "devskyy.cli"]
    times = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([*command, "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cold_validate(folder: Path) -> float:
    """Wall time of ``devskyy validate FOLDER`` in a fresh interpreter (imports included)."""
    script = Path(sys.executable).with_name("devskyy")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "devskyy.cli"]
    start = time.perf_counter()
    subprocess.run([*command, "validate", str(folder)], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import_start = time.perf_counter()
    from devskyy.model.resources import ResourceSet
    from devskyy.runtime.manifests import validate_tree

    import_s = time.perf_counter() - import_start
    try:
        from devskyy.core.plan import plan
    except ImportError:
        plan = None

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        generate(folder, args.agents)

        def load_and_validate() -> Any:
            result = validate_tree(folder, [])
            if result.problems:
                raise SystemExit(f"generated tree is invalid: {result.problems[0]}")
            return result.resources

        floor_s, docs = best_of(args.repeat, lambda: bare_yaml(folder))
        validate_s, desired = best_of(args.repeat, load_and_validate)
        floor_mem = peak_memory(lambda: bare_yaml(folder))
        validate_mem = peak_memory(load_and_validate)
        plan_create_s = plan_same_s = None
        if plan is not None:
            plan_create_s, _ = best_of(args.repeat, lambda: plan(desired, ResourceSet()))
            plan_same_s, _ = best_of(args.repeat, lambda: plan(desired, desired))
        cold_validate_s = cold_validate(folder)
    help_s = cold_help()

    mib = 1024 * 1024
    print(f"agents: {args.agents} ({len(docs)} documents), best of {args.repeat}")
    print(f"imports (devskyy.runtime.manifests):     {import_s * 1000:8.1f} ms")
    print(f"floor: read + yaml.load (CSafeLoader):   {floor_s * 1000:8.1f} ms")
    print(
        f"load + validate:                         {validate_s * 1000:8.1f} ms"
        f"  ({validate_s / floor_s:.1f}x the floor)"
    )
    if plan_create_s is not None and plan_same_s is not None:
        print(f"plan vs empty live (1,000 creates):      {plan_create_s * 1000:8.1f} ms")
        print(f"plan vs identical live (no changes):     {plan_same_s * 1000:8.1f} ms")
    else:
        print("plan: devskyy.core.plan.plan not available, not measured")
    print(f"peak memory, floor:                      {floor_mem / mib:8.1f} MiB")
    print(f"peak memory, load + validate:            {validate_mem / mib:8.1f} MiB")
    print(f"cold `devskyy validate` (subprocess):    {cold_validate_s * 1000:8.1f} ms")
    print(f"cold `devskyy --help` (median of 5):     {help_s * 1000:8.1f} ms")

    total = validate_s + max(plan_create_s or 0.0, plan_same_s or 0.0)
    failures = []
    print(f"target: validate + plan < {TARGET_VALIDATE_PLAN_S:.1f} s: {total:.3f} s")
    print(f"target: cold --help < {TARGET_HELP_S:.1f} s: {help_s:.3f} s")
    if total > TARGET_VALIDATE_PLAN_S * SLACK:
        failures.append("validate + plan")
    if help_s > TARGET_HELP_S * SLACK:
        failures.append("--help")
    if failures:
        print(f"MISSED by more than {SLACK:.0f}x: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
