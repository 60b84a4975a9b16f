"""Several servers on one PostgreSQL: throughput, p99, and what the shared limiter costs.

In one run, on 127.0.0.1 only, against a throw-away PostgreSQL (``tests/pg_server.py``,
or ``DEVSKYY_TEST_POSTGRES_URL``):

1. one ``devskyy serve`` on the store, then two on the same store, driven by the same
   httpx/asyncio client (fixed request count, bounded concurrency, a warm-up first;
   with two servers the requests alternate between them): requests per second and p99
   of ``GET /api/agents/orchestrator/health`` with an admin key;
2. the added cost per request of the shared rate limiter (one upsert in the store)
   against the in-process one, measured as the ``rate_limit`` call itself on the same
   store: p50 and p99 of each, and their difference at p50 (target <= 1 ms), on
   PostgreSQL and on SQLite.

    .venv/bin/python benchmarks/bench_cluster.py [--requests 3000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench_api import free_port, measure, server

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from pg_server import fresh_database, postgres_server  # noqa: E402

from devskyy.adapters.clock import SystemClock  # noqa: E402
from devskyy.adapters.db import open_engine  # noqa: E402
from devskyy.model.resources import ResourceSet  # noqa: E402
from devskyy.runtime.security import SecurityManager  # noqa: E402

HEALTH = "/api/agents/orchestrator/health"


@contextmanager
def serving(url: str, root: Path, n: int) -> Iterator[list[str]]:
    """``n`` ``devskyy serve`` processes on the store at ``url``; their base URLs."""
    with ExitStack() as stack:
        bases = []
        for _ in range(n):
            port = free_port()
            command = [
                sys.executable,
                "-m",
                "devskyy.cli",
                "--state",
                url,
                "serve",
                "--port",
                str(port),
                "--rate-limit",
                "100000000",
                "--log-format",
                "json",
            ]
            base = f"http://127.0.0.1:{port}"
            stack.enter_context(server(command, root, base + "/healthz"))
            bases.append(base)
        yield bases


def limiter_cost(url: str, calls: int) -> dict[str, tuple[float, float]]:
    """p50/p99 in ms of one ``rate_limit`` call, shared (the store) and in-process."""
    engine = open_engine(url)
    result = {}
    try:
        for shared in (False, True):
            manager = SecurityManager(engine, SystemClock(), ResourceSet, shared_limits=shared)
            for _ in range(200):  # warm-up: pool, compiled statements
                manager.rate_limit("bench-warm", 10**9, 60.0)
            times = []
            for i in range(calls):
                principal = f"bench-{i % 20}"  # a handful of principals, as a real load
                t0 = time.perf_counter()
                manager.rate_limit(principal, 10**9, 60.0)
                times.append(time.perf_counter() - t0)
            times.sort()
            result["shared" if shared else "in-process"] = (
                times[len(times) // 2] * 1e3,
                times[int(len(times) * 0.99)] * 1e3,
            )
            manager.close()
    finally:
        engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--limiter-calls", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, postgres_server() as pg, fresh_database(pg) as url:
        root = Path(tmp)
        roles = root / "manifests" / "roles"
        roles.mkdir(parents=True)
        for name in ("admin", "operator", "analyst", "service", "guest"):
            (roles / f"{name}.yaml").write_text(
                (ROOT / "manifests/roles" / f"{name}.yaml").read_text()
            )
        cli = [sys.executable, "-m", "devskyy.cli", "--state", url]
        env = {**os.environ, "NO_COLOR": "1"}
        subprocess.run(
            [*cli, "apply", str(root / "manifests")],
            cwd=root,
            env=env,
            check=True,
            capture_output=True,
        )
        key = subprocess.run(
            [*cli, "keys", "create", "bench", "--role", "admin"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        headers = {"Authorization": f"Bearer {key}"}
        figures = []
        for n in (1, 2):
            with serving(url, root, n) as bases:
                urls = [base + HEALTH for base in bases]
                figures.append((n, *measure(urls, headers, args.requests, args.concurrency)))
        pg_cost = limiter_cost(url, args.limiter_calls)
        sqlite_cost = limiter_cost(f"sqlite:///{root / 'bench.db'}", args.limiter_calls)

    print(
        f"requests: {args.requests}, concurrency: {args.concurrency}, one PostgreSQL "
        "(loopback), one uvicorn worker per server"
    )
    for n, rps, p99 in figures:
        label = f"{n} server{'s' if n > 1 else ''} on PostgreSQL, GET {HEALTH}"
        print(f"{label:62} {rps:8.0f} req/s  p99 {p99:6.1f} ms")
    print(f"throughput, two servers against one: {figures[1][1] / figures[0][1]:.2f}x")
    print(f"rate_limit call ({args.limiter_calls} calls, p50 / p99):")
    for store, cost in (("PostgreSQL", pg_cost), ("SQLite", sqlite_cost)):
        inner, shared = cost["in-process"], cost["shared"]
        added = shared[0] - inner[0]
        verdict = "meets" if added <= 1.0 else "MISSES"
        print(
            f"  {store:10} in-process {inner[0]:.3f} / {inner[1]:.3f} ms, "
            f"shared {shared[0]:.3f} / {shared[1]:.3f} ms: added {added:.3f} ms at p50 "
            f"({verdict} the target of 1 ms)"
        )


if __name__ == "__main__":
    main()
