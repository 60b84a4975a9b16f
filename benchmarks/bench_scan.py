"""Benchmark: devskyy's scanner and fixer next to running ruff and bandit directly.

Three measurements, each next to its baseline measured in the same run (best of
``--repeat``):

1. **Scan** of a real codebase: the installed source of a well-known pure-Python package
   from this environment's site-packages (``pydantic`` by default; ``--package NAME``),
   copied to a temporary folder. Floor: ``ruff check`` (same rules, --isolated,
   --no-cache), ``ruff format --check`` and ``bandit -r`` run directly, one after another
   and all three at once; the faster of the two is the floor. devskyy: the scanner
   agent's ``full`` scan (walk, ruff lint with fixability, ruff format diff, bandit, AST
   checks, codemod assessment, file hashes). Target: within 1.5x of the floor.
2. **Fix** of one generated ``--fix-lines`` (50,000) line module full of safe fixes
   (imports, ``None`` comparisons, comprehensions, formatting). Baseline: the pinned ruff
   ``check --fix`` (same rules) directly on a copy. devskyy: the fixer agent on a quick
   scan's results, in a child process, from reading the file to the rescan of the
   result, with its peak memory (the child's max RSS) and the size of its run record.
   Targets: at most 3x ruff --fix, peak memory under 200 MB, a bounded record.
3. **The whole CLI** ``devskyy run scan_and_fix`` on the small sample project (startup,
   applying nothing, every step), next to ruff + ruff format + bandit run directly on it;
   and how long after the process started the first step started (target: 0.3 s).

Usage:
    .venv/bin/python benchmarks/bench_scan.py [--package pydantic] [--repeat 3]
        [--fix-lines 50000] [--only scan|fix|cli]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from devskyy.adapters.clock import SystemClock
from devskyy.agents.codecheck import bandit
from devskyy.agents.codecheck.files import PYTHON_SUFFIXES, walk
from devskyy.agents.codecheck.ruff import DEFAULT_SELECT, RuffSettings, ruff_bin
from devskyy.agents.scanner import ScannerAgent
from devskyy.runtime.agent import AgentContext

ROOT = Path(__file__).resolve().parents[1]


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
    bandit.forget()  # each timed scan is cold, as a new `devskyy run` is: no reused findings
    started, cpu = time.perf_counter(), cpu_seconds()
    report = asyncio.run(agent.execute_core_function(scan_type="full", target_path=str(tree)))
    return time.perf_counter() - started, cpu_seconds() - cpu, report


def bench_scan(package: str, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / package
        shutil.copytree(package_source(package), tree, ignore=shutil.ignore_patterns("__pycache__"))
        files = len(walk(tree, PYTHON_SUFFIXES))
        lines = sum(len(p.read_bytes().splitlines()) for p in walk(tree, PYTHON_SUFFIXES))
        commands = floor_commands(tree)
        sequential: dict[str, float] = {}
        concurrent = devskyy = floor_cpu = devskyy_cpu = float("inf")
        report: dict[str, Any] = {}
        for _ in range(repeat):
            before = cpu_seconds()
            for name, seconds in time_sequential(commands).items():
                sequential[name] = min(sequential.get(name, float("inf")), seconds)
            floor_cpu = min(floor_cpu, cpu_seconds() - before)
            concurrent = min(concurrent, time_concurrent(commands))
            seconds, cpu, report = time_devskyy(tree)
            devskyy, devskyy_cpu = min(devskyy, seconds), min(devskyy_cpu, cpu)
    print(f"scan: {package} ({files} Python files, {lines} lines), best of {repeat}")
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
    print(f"  devskyy / floor = {ratio:.2f}x ({verdict} the 1.5x target)")


def generated_module(lines: int) -> str:
    """A module of ``lines`` lines with safe fixes on many of them (and unsafe ones)."""
    out = ["import os, sys", "import json", "from typing import List, Dict", ""]
    n = 0
    while len(out) < lines:
        out += [
            "",
            "",
            f"def func_{n}(values: List[int]) -> Dict[str, int]:",
            f'    """Function {n}."""',
            "    result = {}",
            "    for v in values:",
            "        if v == None:",
            "            continue",
            f"        result[str(v)] = v+{n}",
            "    keys = [k for k in result.keys()]",
            "    if not keys == []:",
            "        return result",
            "    return dict()",
        ]
        n += 1
    while len(out) > lines or not out[-1].startswith("    return"):
        out.pop()
    return "\n".join(out) + "\n"


FIX_CHILD = """
import asyncio, json, sys, time
from pathlib import Path
from devskyy.adapters.clock import SystemClock
from devskyy.agents.fixer import FixerAgent
from devskyy.runtime.agent import AgentContext
work, scan = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
agent = FixerAgent()
agent.bind(AgentContext(name="fixer", config={"allowedRoots": [str(work)]},
                        clock=SystemClock(), state_dir=work / "state"))
asyncio.run(agent.initialize())
started = time.perf_counter()
result = asyncio.run(agent.execute_core_function(scan_results=scan, dry_run=sys.argv[3] == "dry"))
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "record_bytes": len(json.dumps(result)),
                  "applied": result["fix_counts"]["applied"],
                  "remaining": result["remaining_counts"]["total"],
                  "diff_lines": sum(len(d.splitlines()) for d in result.get("diffs", {}).values()),
                  }))
"""


def run_child(argv: list[str], scratch: Path) -> tuple[dict[str, Any], float]:
    """Run ``argv``; its JSON output and its own peak memory (max RSS, MB; the ruff
    processes it starts are not counted: they are ruff's)."""
    with (scratch / "out").open("wb") as out, (scratch / "err").open("wb") as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"child failed: {(scratch / 'err').read_text()[-2000:]}")
    result: dict[str, Any] = json.loads((scratch / "out").read_text())
    return result, usage.ru_maxrss / 1024


def bench_fix(lines: int, repeat: int) -> None:
    source = generated_module(lines)
    rules = ",".join(DEFAULT_SELECT)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "proj").mkdir()
        target = work / "proj" / "big.py"
        target.write_text(source)
        scanner = ScannerAgent()
        scanner.bind(
            AgentContext(name="scanner", config={"allowedRoots": [str(work)]}, clock=SystemClock())
        )
        asyncio.run(scanner.initialize())
        scan = asyncio.run(
            scanner.execute_core_function(scan_type="quick", target_path=str(work / "proj"))
        )
        (work / "scan.json").write_text(json.dumps(scan))
        direct = direct_format = float("inf")
        fixes: dict[str, dict[str, Any]] = {}
        peaks: dict[str, float] = {}
        for _ in range(repeat):
            copy = work / "direct.py"
            copy.write_text(source)
            argv = [ruff_bin(), "check", *RuffSettings().common(), "--select", rules]
            started = time.perf_counter()
            subprocess.run(
                [*argv, "--fix", "--exit-zero", "-q", str(copy)], capture_output=True, check=False
            )
            direct = min(direct, time.perf_counter() - started)
            started = time.perf_counter()
            subprocess.run(
                [ruff_bin(), "format", *RuffSettings().common(), str(copy)],
                capture_output=True,
                check=False,
            )
            direct_format = min(direct_format, time.perf_counter() - started)
            for mode in ("write", "dry"):
                target.write_text(source)
                shutil.rmtree(work / "state", ignore_errors=True)
                child = [sys.executable, "-c", FIX_CHILD, str(work), str(work / "scan.json"), mode]
                measured, peak = run_child(child, work)
                if measured["seconds"] < fixes.get(mode, {}).get("seconds", float("inf")):
                    fixes[mode] = measured
                peaks[mode] = max(peaks.get(mode, 0.0), peak)
    counts = scan["counts"]
    print(
        f"fix: one generated module of {lines} lines, {counts['total']} issues"
        f" ({counts['fixable']} fixable by the quick scan), best of {repeat}"
    )
    print(f"  {'ruff check --fix (direct)':<34} {direct:7.3f} s")
    print(f"  {'ruff format (direct)':<34} {direct_format:7.3f} s")
    for mode, label in (
        ("write", "devskyy fixer (writes, backup)"),
        ("dry", "devskyy fixer (dry run)"),
    ):
        got = fixes[mode]
        ratio = got["seconds"] / direct
        verdict = "within" if ratio <= 3 else "NOT within"
        print(
            f"  {label:<34} {got['seconds']:7.3f} s  = {ratio:.2f}x ruff --fix ({verdict} 3x);"
            f" peak memory {peaks[mode]:.0f} MB; record {got['record_bytes'] / 1e6:.2f} MB;"
            f" {got['applied']} fixes, {got['remaining']} left, {got['diff_lines']} diff lines"
        )


def bench_cli(repeat: int) -> None:
    sample = ROOT / "examples" / "sample_project"
    devskyy = str(Path(sys.executable).with_name("devskyy"))
    cli_best = direct_best = first_step = float("inf")
    # An installed package has its bytecode compiled (pip does it at install). Where
    # PYTHONDONTWRITEBYTECODE is set, every run would compile each module it imports
    # again; so the children may write bytecode, and a first run (not counted) does.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for round_ in range(repeat + 1):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            shutil.copytree(ROOT / "manifests", work / "manifests")
            shutil.copytree(sample, work / "proj", ignore=shutil.ignore_patterns("__pycache__"))
            subprocess.run(
                [devskyy, "apply", "manifests"], cwd=work, env=env, capture_output=True, check=True
            )
            commands = floor_commands(work / "proj")
            started = time.perf_counter()
            for argv in commands.values():
                subprocess.run(argv, capture_output=True, check=False)
            direct_best = min(direct_best, time.perf_counter() - started)
            argv = [devskyy, "run", "scan_and_fix", "-p", "target_path=proj", "-o", "json"]
            wall_start = time.time()
            started = time.perf_counter()
            done = subprocess.run(
                argv, cwd=work, env=env, capture_output=True, text=True, check=False
            )
            if round_ == 0:
                continue  # the warm-up run: bytecode written, not counted
            cli_best = min(cli_best, time.perf_counter() - started)
            record = json.loads(done.stdout)
            first = min(
                datetime.fromisoformat(s["started_at"]).timestamp()
                for s in record["steps"].values()
                if s["started_at"]
            )
            first_step = min(first_step, first - wall_start)
    print(f"cli: devskyy run scan_and_fix on examples/sample_project, best of {repeat}")
    print(f"  {'ruff, ruff format, bandit direct':<34} {direct_best:7.3f} s")
    print(
        f"  {'devskyy run scan_and_fix (whole)':<34} {cli_best:7.3f} s"
        f"  = {cli_best / direct_best:.2f}x the tools run directly"
    )
    verdict = "within" if first_step <= 0.3 else "NOT within"
    print(f"  first step started {first_step:.3f} s after the process ({verdict} the 0.3 s target)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", default="pydantic")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fix-lines", type=int, default=50_000)
    parser.add_argument("--only", choices=("scan", "fix", "cli"))
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    if args.only in (None, "scan"):
        bench_scan(args.package, args.repeat)
    if args.only in (None, "fix"):
        bench_fix(args.fix_lines, args.repeat)
    if args.only in (None, "cli"):
        bench_cli(args.repeat)


if __name__ == "__main__":
    main()
