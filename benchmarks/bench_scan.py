"""Benchmark: a full devskyy scan of a real codebase vs running ruff and bandit directly.

The tree is the installed source of a well-known pure-Python package from this
environment's site-packages (``pydantic`` by default; ``--package NAME`` for another),
copied to a temporary folder. Measured in the same run, best of ``--repeat``:

* floor: ``ruff check`` (same rules, --isolated, --no-cache), ``ruff format --check``
  and ``bandit -r`` run directly on the folder, one after another and all three at once;
  the faster of the two is the floor;
* devskyy: the scanner agent's ``full`` scan (walk with .gitignore rules, ruff lint with
  fixability, ruff format diff, bandit, AST checks, codemod fixability, file hashes).

devskyy also splits bandit's files by size across up to min(CPUs, 4) processes when the
tree is large enough (bandit checks each file alone). Target: devskyy within 1.5x of
the floor. Usage:
    .venv/bin/python benchmarks/bench_scan.py [--package pydantic] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from devskyy.adapters.clock import SystemClock
from devskyy.agents.codecheck.files import PYTHON_SUFFIXES, walk
from devskyy.agents.codecheck.ruff import DEFAULT_SELECT, RuffSettings, ruff_bin
from devskyy.agents.scanner import ScannerAgent
from devskyy.runtime.agent import AgentContext


def package_source(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not an installed package")
    return Path(next(iter(spec.submodule_search_locations)))


def floor_commands(tree: Path) -> dict[str, list[str]]:
    common = RuffSettings().common()
    return {
        "ruff check": [
            ruff_bin(),
            "check",
            *common,
            "--select",
            ",".join(DEFAULT_SELECT),
            "--output-format",
            "json",
            "--exit-zero",
            str(tree),
        ],
        "ruff format": [ruff_bin(), "format", *common, "--check", str(tree)],
        "bandit": [
            sys.executable,
            "-I",
            "-m",
            "bandit",
            "-r",
            str(tree),
            "-f",
            "json",
            "-q",
            "--exit-zero",
            "-s",
            "B101",
        ],
    }


def time_sequential(commands: dict[str, list[str]]) -> dict[str, float]:
    times: dict[str, float] = {}
    for name, argv in commands.items():
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False)
        times[name] = time.perf_counter() - started
    return times


def cpu_seconds() -> float:
    """CPU time of this process and its finished children so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def time_concurrent(commands: dict[str, list[str]]) -> float:
    started = time.perf_counter()
    processes = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for argv in commands.values()
    ]
    for process in processes:
        process.communicate()
    return time.perf_counter() - started


def time_devskyy(tree: Path) -> tuple[float, float, dict[str, Any]]:
    agent = ScannerAgent()
    agent.bind(
        AgentContext(name="scanner", config={"allowedRoots": [str(tree)]}, clock=SystemClock())
    )
    asyncio.run(agent.initialize())
    started, cpu = time.perf_counter(), cpu_seconds()
    report = asyncio.run(agent.execute_core_function(scan_type="full", target_path=str(tree)))
    return time.perf_counter() - started, cpu_seconds() - cpu, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default="pydantic")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / args.package
        shutil.copytree(
            package_source(args.package), tree, ignore=shutil.ignore_patterns("__pycache__")
        )
        files = len(walk(tree, PYTHON_SUFFIXES))
        lines = sum(len(p.read_bytes().splitlines()) for p in walk(tree, PYTHON_SUFFIXES))
        commands = floor_commands(tree)
        sequential: dict[str, float] = {}
        concurrent = devskyy = floor_cpu = devskyy_cpu = float("inf")
        report: dict[str, Any] = {}
        for _ in range(args.repeat):
            before = cpu_seconds()
            for name, seconds in time_sequential(commands).items():
                sequential[name] = min(sequential.get(name, float("inf")), seconds)
            floor_cpu = min(floor_cpu, cpu_seconds() - before)
            concurrent = min(concurrent, time_concurrent(commands))
            seconds, cpu, report = time_devskyy(tree)
            devskyy, devskyy_cpu = min(devskyy, seconds), min(devskyy_cpu, cpu)
    print(f"tree: {args.package} ({files} Python files, {lines} lines), best of {args.repeat}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    for name, seconds in sequential.items():
        print(f"  {name:<28} {seconds:7.3f} s  {files / seconds:8.1f} files/s")
    total = sum(sequential.values())
    print(f"  {'floor, one after another':<28} {total:7.3f} s  {files / total:8.1f} files/s")
    print(f"  {'floor, concurrently':<28} {concurrent:7.3f} s  {files / concurrent:8.1f} files/s")
    print(f"  {'devskyy full scan':<28} {devskyy:7.3f} s  {files / devskyy:8.1f} files/s")
    print(f"  CPU seconds: tools directly {floor_cpu:.2f}, devskyy {devskyy_cpu:.2f}")
    counts = report.get("counts", {})
    print(f"  devskyy found {counts.get('total')} issues ({counts.get('fixable')} fixable)")
    floor = min(total, concurrent)  # the faster way of running the tools directly
    ratio = devskyy / floor
    verdict = "within" if ratio <= 1.5 else "NOT within"
    print(f"devskyy / floor = {ratio:.2f}x ({verdict} the 1.5x target)")


if __name__ == "__main__":
    main()
