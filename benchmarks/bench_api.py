"""Authenticated API throughput and p99 latency, next to a bare FastAPI hello endpoint.

Both servers run the same way in the same run: one uvicorn process each on 127.0.0.1
(``devskyy serve`` with a CLI-made admin key, and a one-route FastAPI app), driven by
an httpx/asyncio client with bounded concurrency and a fixed request count, after a
warm-up. The devskyy endpoint is ``GET /api/agents/orchestrator/health``: key check,
rate limit, RBAC decision (audited), the handler, metrics and a JSON access log line.
Target: at least half the bare endpoint's requests per second.

    .venv/bin/python benchmarks/bench_api.py [--requests 4000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HELLO = """\
from fastapi import FastAPI

app = FastAPI()


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(command: list[str], cwd: Path, ready: str, log: Path | None = None) -> Iterator[None]:
    err = log.open("w") if log else subprocess.DEVNULL
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err, env=os.environ)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(ready, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {command}")
            time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if log:
            err.close()  # type: ignore[union-attr]


async def load(urls: list[str], headers: dict[str, str], count: int, conc: int) -> list[float]:
    """``count`` GETs spread round-robin over ``urls``, at most ``conc`` in flight."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=conc * len(urls), max_keepalive_connections=conc)
    targets = itertools.cycle(urls)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:
        sent = 0

        async def worker() -> None:
            nonlocal sent
            while sent < count:
                sent += 1
                url = next(targets)
                t0 = time.perf_counter()
                r = await client.get(url)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    raise RuntimeError(f"{url}: {r.status_code} {r.text[:200]}")

        await asyncio.gather(*(worker() for _ in range(conc)))
    return latencies


def measure(urls: list[str], headers: dict[str, str], count: int, conc: int) -> tuple[float, float]:
    asyncio.run(load(urls, headers, min(500, count), conc))  # warm-up
    started = time.perf_counter()
    latencies = asyncio.run(load(urls, headers, count, conc))
    elapsed = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return count / elapsed, p99 * 1000


def server_side(log: Path, count: int) -> tuple[float, float]:
    """p50 and p99 of ``duration_ms`` in the JSON access log (the timed requests only)."""
    durations = [
        float(json.loads(line)["duration_ms"])
        for line in log.read_text().splitlines()
        if '"devskyy.api.access"' in line and "orchestrator/health" in line
    ][-count:]
    durations.sort()
    return durations[len(durations) // 2], durations[int(len(durations) * 0.99)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "hello_app.py").write_text(HELLO)
        (root / "workspace").mkdir()
        roles = root / "manifests" / "roles"
        roles.mkdir(parents=True)
        repo_roles = Path(__file__).resolve().parents[1] / "manifests" / "roles"
        for name in ("admin", "operator", "analyst", "service", "guest"):
            (roles / f"{name}.yaml").write_text((repo_roles / f"{name}.yaml").read_text())
        state = f"sqlite:///{root / 'state.db'}"
        cli = [sys.executable, "-m", "devskyy.cli", "--state", state]
        key = subprocess.run(
            [*cli, "keys", "create", "bench", "--role", "admin"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

        port = free_port()
        bare = [
            sys.executable,
            "-m",
            "uvicorn",
            "hello_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        with server(bare, root, f"http://127.0.0.1:{port}/hello"):
            bare_rps, bare_p99 = measure(
                [f"http://127.0.0.1:{port}/hello"], {}, args.requests, args.concurrency
            )

        port = free_port()
        serve = [
            *cli,
            "serve",
            "--port",
            str(port),
            "--rate-limit",
            "100000000",
            "--log-format",
            "json",
            "--manifests",
            str(root / "manifests"),
        ]
        log = root / "serve.log"
        with server(serve, root, f"http://127.0.0.1:{port}/healthz", log):
            api_rps, api_p99 = measure(
                [f"http://127.0.0.1:{port}/api/agents/orchestrator/health"],
                {"Authorization": f"Bearer {key}"},
                args.requests,
                args.concurrency,
            )

        inside = server_side(log, args.requests)
    ratio = api_rps / bare_rps
    print(f"requests: {args.requests}, concurrency: {args.concurrency} (one uvicorn worker each)")
    for label, rps, p99 in (
        ("bare FastAPI GET /hello", bare_rps, bare_p99),
        ("devskyy GET /api/agents/orchestrator/health", api_rps, api_p99),
    ):
        print(f"{label:45} {rps:8.0f} req/s  p99 {p99:6.1f} ms")
    print(
        f"devskyy time inside the server (access log, last {args.requests} requests): "
        f"p50 {inside[0]:.2f} ms, p99 {inside[1]:.2f} ms"
    )
    verdict = "meets" if ratio >= 0.5 else "MISSES"
    print(f"ratio: {ratio:.2f} of the bare endpoint ({verdict} the target of 0.50)")


if __name__ == "__main__":
    main()
