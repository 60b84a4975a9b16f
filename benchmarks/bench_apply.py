"""Benchmark: plan and apply 1,000 agents to the SQLite store, then no-op, update, rollback.

The floor, measured in the same run, is the bare cost of the same writes: one
transaction that ``executemany``-inserts the 1,000 canonical documents into an empty
table of the same shape, with nothing checked and no revision recorded. ``apply`` adds
the per-row checks against the plan (stale plans are refused), the revision row and its
full snapshot; the ratio says what those cost.

    .venv/bin/python benchmarks/bench_apply.py [--agents N] [--repeat R]
"""

# ruff: noqa: PLC0415 (the package is imported inside main() to keep --help instant)

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def best_of(repeat: int, fn: Callable[[], Any], setup: Callable[[], Any] | None = None) -> float:
    """The fastest of ``repeat`` runs of ``fn`` (seconds), ``setup`` untimed before each."""
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from sqlalchemy import Column, Integer, MetaData, String, Table, Text, insert

    from devskyy.adapters.db import open_engine
    from devskyy.adapters.state_store import SqlStateStore, encode
    from devskyy.core.plan import plan
    from devskyy.model.manifests import Agent
    from devskyy.model.plan import ApplyMeta
    from devskyy.model.resources import ResourceSet, document

    def make(i: int, priority: str) -> Agent:
        return Agent.model_validate(
            {
                "apiVersion": "devskyy.dev/v1",
                "kind": "Agent",
                "metadata": {"name": f"agent_{i:04d}", "labels": {"team": f"t{i % 10}"}},
                "spec": {
                    "module": f"devskyy.agents.gen.m{i}:Agent{i}",
                    "priority": priority,
                    "capabilities": [f"cap_{i}", f"shared_{i % 10}"],
                    "dependencies": [f"agent_{i - 1:04d}"] if i else [],
                    "retry": {"maxAttempts": 4, "jitter": 0.1},
                    "config": {"endpoint": f"https://example.invalid/{i}", "batch": i},
                },
            }
        )

    desired = ResourceSet(tuple(make(i, "high") for i in range(args.agents)))
    edited = ResourceSet(
        tuple(make(i, "low" if i % 100 == 0 else "high") for i in range(args.agents))
    )
    meta = ApplyMeta(created_at=datetime.now(tz=UTC), source="manifests/")

    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(1_000_000))

        def fresh() -> SqlStateStore:
            return SqlStateStore(open_engine(f"sqlite:///{Path(tmp) / f's{next(counter)}.db'}"))

        # floor: the same documents, bare executemany in one transaction
        floor_meta = MetaData()
        bare = Table(
            "bare",
            floor_meta,
            Column("kind", String(32), primary_key=True),
            Column("name", String(63), primary_key=True),
            Column("document", Text),
            Column("revision", Integer),
        )
        rows = [
            {"kind": m.kind, "name": m.name, "document": encode(document(m)), "revision": 1}
            for m in desired
        ]
        floor_engines: list[Any] = []

        def floor_setup() -> None:
            engine = open_engine(f"sqlite:///{Path(tmp) / f'f{next(counter)}.db'}")
            floor_meta.create_all(engine)
            floor_engines.append(engine)

        def floor_run() -> None:
            with floor_engines[-1].begin() as conn:
                conn.execute(insert(bare), rows)

        floor_s = best_of(args.repeat, floor_run, floor_setup)

        stores: list[SqlStateStore] = []
        plan_create_s = best_of(args.repeat, lambda: plan(desired, ResourceSet()))
        the_plan = plan(desired, ResourceSet())
        apply_s = best_of(
            args.repeat, lambda: stores[-1].apply(the_plan, meta), lambda: stores.append(fresh())
        )
        store = stores[-1]
        live_s = best_of(args.repeat, store.live)
        noop_s = best_of(args.repeat, lambda: plan(desired, store.live()))
        assert not plan(desired, store.live()).has_changes
        update_plan = plan(edited, store.live())
        update_s = best_of(1, lambda: store.apply(update_plan, meta))
        snapshot_s = best_of(args.repeat, lambda: store.snapshot(1))
        rollback_plan = plan(store.snapshot(1), store.live(), prune=True)
        rollback_s = best_of(1, lambda: store.apply(rollback_plan, meta))
        revisions = store.revisions()
        for s in stores:
            s.engine.dispose()
        for e in floor_engines:
            e.dispose()

    n = args.agents
    print(f"agents: {n}, SQLite file store, best of {args.repeat}")
    print(f"floor: bare executemany of {n} documents:   {floor_s * 1000:8.1f} ms")
    print(
        f"apply {n} creates (one revision):          {apply_s * 1000:8.1f} ms"
        f"  ({apply_s / floor_s:.1f}x the floor)"
    )
    print(f"plan {n} creates (pure):                    {plan_create_s * 1000:8.1f} ms")
    print(f"read live state ({n} resources):            {live_s * 1000:8.1f} ms")
    print(f"re-plan, no changes (read live + plan):     {noop_s * 1000:8.1f} ms")
    print(
        f"apply {update_plan.updates} updates among {n}:                  {update_s * 1000:8.1f} ms"
    )
    print(f"read revision 1 snapshot:                   {snapshot_s * 1000:8.1f} ms")
    print(
        f"rollback to revision 1 ({rollback_plan.updates} updates):         "
        f"{rollback_s * 1000:8.1f} ms"
    )
    print(f"revisions recorded: {[r.number for r in revisions]}")
    print(json.dumps({"apply_ms": round(apply_s * 1000, 1), "floor_ms": round(floor_s * 1000, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
