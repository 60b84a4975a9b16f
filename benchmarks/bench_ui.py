"""Benchmark: each dashboard page's server time with 1,000 agents and 1,000 runs in the store.

The store (SQLite in a temp folder) holds 1,000 applied Agent manifests (a no-op agent,
each depending on up to two earlier ones, so the dependency graph has depth), one
three-step workflow, and 1,000 recorded runs of it (every status; each with its step
records and attempt events); the 1,000 agents are built and running. One signed-in
session then requests every page through the app in-process (``httpx`` ASGI transport,
so the figure is the server's work, not the network's), after a warm-up.

Baselines, measured in the same run over the same data: ``/healthz`` (the bare request
path: middleware, routing, JSON) and the JSON API that returns the same data where one
exists (``/api/agents/registry/list`` for the overview's agents, ``/api/runs/{id}`` for
a run). Target: every page's median under 200 ms.

A long-lived system also has a long history: ``--revisions N`` adds N revisions (each
with its ``manifests.applied`` event; their snapshots are empty, since no measured page
reads them) and ``--audit-events N`` N more audit events, which the overview (latest
revision) and the audit page (verify) read.

    .venv/bin/python benchmarks/bench_ui.py [--agents 1000] [--runs 1000] [--requests 15]
        [--revisions 0] [--audit-events 0]
"""

# ruff: noqa: PLC0415 (the package is imported inside main() to keep --help instant)

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

AGENT_CODE = """\
from devskyy.runtime.agent import BaseAgent


class Noop(BaseAgent):
    def __init__(self) -> None:
        super().__init__(agent_name="noop", version="1.0.0")

    async def initialize(self) -> bool:
        self.status = BaseAgent.AgentStatus.HEALTHY
        return True

    async def execute_core_function(self, **kwargs):
        return {"ok": True}
"""

WORKFLOW = """\
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {name: bench_flow}
spec:
  steps:
    - {name: fetch, agent: a0000}
    - {name: transform, agent: a0001, needs: [fetch]}
    - {name: store, agent: a0002, needs: [transform]}
"""

TARGET_MS = 200.0


def write_tree(root: Path, agents: int) -> Path:
    """1,000 agents (dependencies on up to two earlier ones), a workflow, the roles."""
    tree = root / "manifests"
    (tree / "agents").mkdir(parents=True)
    (tree / "workflows").mkdir()
    rng = random.Random(7)
    docs = []
    for i in range(agents):
        deps = sorted({f"a{rng.randrange(i):04d}" for _ in range(min(i, 2))}) if i else []
        docs.append(
            "apiVersion: devskyy.dev/v1\nkind: Agent\n"
            f"metadata: {{name: a{i:04d}}}\n"
            f"spec: {{module: 'bench_noop_agent:Noop', capabilities: [c{i % 50}], "
            f"dependencies: [{', '.join(deps)}]}}\n"
        )
    (tree / "agents" / "all.yaml").write_text("---\n".join(docs))
    (tree / "workflows" / "bench_flow.yaml").write_text(WORKFLOW)
    roles = Path(__file__).resolve().parents[1] / "manifests" / "roles"
    for role in ("admin.yaml", "analyst.yaml", "guest.yaml", "operator.yaml", "service.yaml"):
        (tree / "roles").mkdir(exist_ok=True)
        (tree / "roles" / role).write_text((roles / role).read_text())
    return tree


def record_runs(engine: Any, runs: int) -> list[str]:
    """``runs`` runs of bench_flow in every status, with steps and attempt events."""
    from devskyy.adapters.run_store import SqlRunStore
    from devskyy.model.runs import (
        RunPatch,
        RunRecord,
        RunStatus,
        RunWrite,
        StepEvent,
        StepRecord,
        StepStatus,
    )

    store = SqlRunStore(engine)
    statuses = [RunStatus.SUCCEEDED] * 6 + [RunStatus.FAILED, RunStatus.CANCELLED]
    ids = []
    base = time.time() - runs * 60
    for i in range(runs):
        run_id = f"run{i:06d}"
        status = statuses[i % len(statuses)]
        at = base + i * 60
        names = ("fetch", "transform", "store")
        store.create(
            RunRecord(
                run_id,
                "bench_flow",
                {"i": i},
                RunStatus.PENDING,
                created_at=at,
                steps=tuple(StepRecord(n) for n in names),
            )
        )
        ok = StepStatus.SUCCEEDED
        last = StepStatus.FAILED if status is RunStatus.FAILED else ok
        steps = tuple(
            StepRecord(
                n,
                last if k == 2 else ok,
                1,
                at + k,
                at + k + 0.5,
                0.5,
                output={"rows": i, "step": n},
            )
            for k, n in enumerate(names)
        )
        events = tuple(
            StepEvent(s.name, s.status, 1, at + k + 0.5, started_at=at + k)
            for k, s in enumerate(steps)
        )
        patch = RunPatch(status=status, started_at=at, finished_at=at + 3)
        store.write(RunWrite(run_id, patch, steps, events))
        ids.append(run_id)
    return ids


def grow_history(engine: Any, revisions: int, events: int) -> None:
    """``revisions`` more revisions with their events, then ``events`` more audit events."""
    import json
    from datetime import UTC, datetime

    from sqlalchemy import func, insert, select

    from devskyy.adapters.security_store import SqlSecurityStore
    from devskyy.adapters.state_sql import revisions_table
    from devskyy.core.audit import GENESIS, chain
    from devskyy.model.security import AuditEvent, EventType, Outcome

    with engine.begin() as conn:
        first = int(conn.execute(select(func.max(revisions_table.c.number))).scalar() or 0) + 1
        numbers = range(first, first + revisions)
        summary = json.dumps({"created": 0, "deleted": 0, "unchanged": 0, "updated": 1})
        rows = [
            {
                "number": n,
                "created_at": datetime.now(UTC),
                "source": "bench",
                "summary": summary,
                "snapshot": "[]",
            }
            for n in numbers
        ]
        if rows:
            conn.execute(insert(revisions_table), rows)
    at = time.time() - events
    history = [
        AuditEvent(
            at, "watch", EventType.MANIFESTS_APPLIED, "manifests", Outcome.SUCCESS, {"revision": n}
        )
        for n in numbers
    ] + [
        AuditEvent(
            at + i,
            f"user{i % 40}",
            EventType.PERMISSION_DENIED if i % 3 else EventType.KEY_VALIDATED,
            f"agents/a{i % 1000:04d}",
            Outcome.FAILURE if i % 3 else Outcome.SUCCESS,
            {"permission": "read", "count": i % 9 + 1, "source": "10.0.0.1"},
        )
        for i in range(events)
    ]
    store = SqlSecurityStore(engine)
    for start in range(0, len(history), 5000):
        seq, last = store.audit_head() or (0, GENESIS)
        store.append_audit(chain(history[start : start + 5000], seq, last), after=seq)


async def measure(client: Any, path: str, requests: int, **kw: Any) -> tuple[float, float, float]:
    """The first GET's milliseconds (cold caches), then the median and worst of
    ``requests`` more (after one more warm-up)."""
    started = time.perf_counter()
    answer = await client.get(path, **kw)
    cold = (time.perf_counter() - started) * 1000
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    answer = await client.get(path, **kw)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        answer = await client.get(path, **kw)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    return cold, statistics.median(times), max(times)


async def run(
    agents: int, runs: int, requests: int, revisions: int = 0, audit_events: int = 0
) -> list[tuple[str, float, float, float, str]]:
    import httpx

    from devskyy.api import ApiSettings, create_app
    from devskyy.runtime.reconciler import Reconciler
    from devskyy.runtime.system import open_system

    with tempfile.TemporaryDirectory(prefix="devskyy-bench-ui-") as tmp:
        root = Path(tmp)
        (root / "bench_noop_agent.py").write_text(AGENT_CODE)
        sys.path.insert(0, str(root))
        os.environ["DEVSKYY_ALLOWED_MODULES"] = "bench_noop_agent"
        tree = write_tree(root, agents)
        setup = time.perf_counter()
        system = await open_system(f"sqlite:///{root / 'state.db'}", start_agents=False)
        try:
            # Audited as `devskyy apply` does, so that the audit page's chain verifies.
            Reconciler(system.state, audit_actor="bench").apply_tree(tree)
            summary = await system.registry.discover_and_register_all_agents()
            assert not summary.get("failed"), summary
            ids = record_runs(system.engine, runs)
            grow_history(system.engine, revisions, audit_events)
            key = system.security_manager().generate_api_key("bench", "admin").key
            settings = ApiSettings(rate_limit=1_000_000, block_sources=False)
            app = create_app(system, settings)
            print(
                f"store: {agents} agents running, {runs} runs recorded, "
                f"{revisions + 1} revisions, {audit_events}+ audit events "
                f"(set-up {time.perf_counter() - setup:.1f} s)\n"
            )
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                form = await client.get("/ui/login")
                token = form.headers["set-cookie"].split(";")[0].split("=", 1)[1]
                signed = await client.post("/ui/login", data={"api_key": key, "login_token": token})
                assert signed.status_code == 303, signed.text
                api = {"headers": {"X-API-Key": key}}
                middle = ids[len(ids) // 2]
                rows = []
                for name, path, kw in [
                    ("baseline /healthz", "/healthz", {}),
                    ("baseline GET /api/agents/registry/list", "/api/agents/registry/list", api),
                    ("baseline GET /api/runs/{id}", f"/api/runs/{middle}", api),
                    ("/ui/ (overview)", "/ui/", {}),
                    ("/ui/graph", "/ui/graph", {}),
                    ("/ui/runs", "/ui/runs", {}),
                    ("/ui/runs?status=failed", "/ui/runs?status=failed", {}),
                    ("/ui/runs/{id}", f"/ui/runs/{middle}", {}),
                    ("/ui/revisions", "/ui/revisions", {}),
                    ("/ui/revisions/1 (plan diff)", "/ui/revisions/1", {}),
                    ("/ui/security", "/ui/security", {}),
                    ("/ui/audit", "/ui/audit", {}),
                ]:
                    cold, median, worst = await measure(client, path, requests, **kw)
                    verdict = (
                        ""
                        if name.startswith("baseline")
                        else ("ok" if median < TARGET_MS else "OVER")
                    )
                    rows.append((name, cold, median, worst, verdict))
                audit = await client.get("/ui/audit")
                assert "✓ chain intact" in audit.text, "the bench's audit log must verify"
            return rows
        finally:
            await system.close()
            sys.path.remove(str(root))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--revisions", type=int, default=0)
    parser.add_argument("--audit-events", type=int, default=0)
    args = parser.parse_args()
    rows = asyncio.run(
        run(args.agents, args.runs, args.requests, args.revisions, args.audit_events)
    )
    header = f"{'page':40} {'first ms':>9} {'median ms':>10} {'worst ms':>9}"
    print(f"{header}  median < {TARGET_MS:.0f} ms")
    for name, cold, median, worst, verdict in rows:
        print(f"{name:40} {cold:9.1f} {median:10.1f} {worst:9.1f}  {verdict}")


if __name__ == "__main__":
    main()
