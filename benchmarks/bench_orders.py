"""Benchmark: orders per second through the whole ``ecommerce_order`` workflow on SQLite.

Three ways of placing the same orders (catalog product, ``pm_card_visa``) on a fresh
SQLite store, in one run:

* ``store only``: the same database operations, called directly and synchronously
  (create order, reserve, sandbox charge, payment row, ledger entry); the floor.
* ``agents``: the three commerce agents called one after another (validation, pricing,
  rules, worker threads for the store), no workflow engine.
* ``workflow``: ``devskyy``'s runtime as ``devskyy run`` uses it: the shipped manifests,
  the registry, the orchestrator (breakers, timeouts) and the workflow engine writing
  every run and step record to the same SQLite store.

Each is measured sequentially (one order at a time) and, for the two async paths, with
``--concurrency`` orders in flight. The ratio workflow/agents is what the engine and
its durable run records cost per order.

    .venv/bin/python benchmarks/bench_orders.py [--orders N] [--concurrency C]
"""

# ruff: noqa: PLC0415 (the package is imported inside main() to keep --help instant)

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

SKU = "DSK-MUG-001"


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:8.1f} orders/s  {1000 * seconds / n:7.2f} ms/order"


async def in_batches(n: int, concurrency: int, one: Callable[[], Awaitable[Any]]) -> float:
    """Run ``one`` ``n`` times with at most ``concurrency`` in flight; seconds taken."""
    gate = asyncio.Semaphore(concurrency)

    async def guarded() -> Any:
        async with gate:
            return await one()

    start = time.perf_counter()
    results = await asyncio.gather(*(guarded() for _ in range(n)))
    elapsed = time.perf_counter() - start
    assert len(results) == n
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    from devskyy.adapters import commerce_payments as money
    from devskyy.adapters import commerce_store as store
    from devskyy.adapters.clock import SystemClock
    from devskyy.adapters.db import open_engine
    from devskyy.agents.commerce import EcommerceAgent, FinancialAgent, InventoryAgent
    from devskyy.agents.commerce.common import seed_store
    from devskyy.core.commerce import payment_idempotency_key
    from devskyy.core.ledger import sale_entry
    from devskyy.model.resources import ResourceSet
    from devskyy.model.runs import RunStatus
    from devskyy.runtime.agent import AgentContext
    from devskyy.runtime.manifests import load_desired
    from devskyy.runtime.orchestrator import Orchestrator
    from devskyy.runtime.registry import Registry

    root = Path(__file__).resolve().parents[1]
    desired = load_desired(root / "manifests")
    live = ResourceSet(
        tuple(
            m
            for m in desired
            if (m.kind == "Agent" and m.name in {"ecommerce", "inventory", "financial"})
            or (m.kind == "Workflow" and m.name == "ecommerce_order")
        )
    )
    n = args.orders
    tmp = Path(tempfile.mkdtemp(prefix="bench_orders_"))
    counter = iter(range(10**9))

    def fresh(name: str) -> Any:
        engine = open_engine(f"sqlite:///{tmp / name}.db")
        seed_store(engine)
        store.set_stock(engine, SKU, 10**9)
        return engine

    # -- store only: the same writes, no rules, no threads, no engine -------------------
    def store_only(engine: Any) -> None:
        k = next(counter)
        order_id = f"b{k}"
        store.create_order(
            engine,
            {
                "id": order_id,
                "customer": "b@example.com",
                "currency": "USD",
                "subtotal_cents": 1400,
                "tax_cents": 0,
                "total_cents": 1400,
                "cost_cents": 520,
                "status": "validated",
            },
            [
                {
                    "sku": SKU,
                    "name": "mug",
                    "quantity": 1,
                    "unit_price_cents": 1400,
                    "unit_cost_cents": 520,
                }
            ],
            0.0,
        )
        store.reserve(
            engine,
            order_id,
            from_status="validated",
            reserved_status="reserved",
            short_status="out_of_stock",
            now=0.0,
        )
        key = payment_idempotency_key(order_id)
        money.put_sandbox_charge(
            engine,
            {
                "idempotency_key": key,
                "charge_id": f"ch_{k}",
                "fingerprint": "f",
                "amount_cents": 1400,
                "currency": "USD",
                "status": "succeeded",
                "decline_code": None,
                "card_last4": "4242",
            },
            0.0,
        )
        money.record_payment(
            engine,
            {
                "order_id": order_id,
                "idempotency_key": key,
                "gateway": "sandbox",
                "charge_id": f"ch_{k}",
                "amount_cents": 1400,
                "currency": "USD",
                "status": "succeeded",
                "decline_code": None,
                "card_brand": "visa",
                "card_last4": "4242",
            },
            allowed_from=["reserved"],
            status="paid",
            now=0.0,
        )
        draft = sale_entry(
            order_id, "USD", subtotal_cents=1400, tax_cents=0, cost_cents=520, charge_id=f"ch_{k}"
        )
        money.post_sale(
            engine,
            {
                "reference": draft.reference,
                "order_id": order_id,
                "description": draft.description,
                "currency": "USD",
            },
            [
                {"account": x.account, "amount_cents": x.amount_cents, "memo": x.memo}
                for x in draft.lines
            ],
            allowed_from=["paid"],
            status="completed",
            now=0.0,
        )

    engine = fresh("store")
    start = time.perf_counter()
    for _ in range(n):
        store_only(engine)
    t_store = time.perf_counter() - start
    assert store.count(engine, store.journal_entries) == n
    engine.dispose()

    # -- agents, no workflow engine --------------------------------------------------
    async def agents_run(concurrency: int) -> float:
        engine = fresh(f"agents{concurrency}")
        clock = SystemClock()
        shop = []
        for name, cls in (
            ("ecommerce", EcommerceAgent),
            ("inventory", InventoryAgent),
            ("financial", FinancialAgent),
        ):
            agent = cls()
            agent.bind(AgentContext(name=name, engine=engine, clock=clock))
            assert await agent.initialize()
            shop.append(agent)
        ecommerce, inventory, financial = shop

        async def one() -> None:
            order = await ecommerce.execute_core_function(capability="validate_order")
            oid = order["order_id"]
            await inventory.execute_core_function(capability="reserve_inventory", order_id=oid)
            await financial.execute_core_function(capability="process_payment", order_id=oid)
            await financial.execute_core_function(capability="record_transaction", order_id=oid)

        elapsed = await in_batches(n, concurrency, one)
        assert store.count(engine, store.journal_entries) == n
        engine.dispose()
        return elapsed

    # -- the whole workflow ----------------------------------------------------------
    async def workflow_run(concurrency: int) -> float:
        engine = fresh(f"workflow{concurrency}")
        clock = SystemClock()
        registry = Registry(Orchestrator(clock), live, clock=clock, engine=engine)
        await registry.discover_and_register_all_agents()
        assert registry.failures == {}, registry.failures
        runner = registry.workflow_engine()

        async def one() -> None:
            record = await runner.run("ecommerce_order", {})
            assert record.status is RunStatus.SUCCEEDED, record

        elapsed = await in_batches(n, concurrency, one)
        assert store.count(engine, store.journal_entries) == n
        await registry.shutdown()
        engine.dispose()
        return elapsed

    t_agents_1 = asyncio.run(agents_run(1))
    t_workflow_1 = asyncio.run(workflow_run(1))
    c = args.concurrency
    t_agents_c = asyncio.run(agents_run(c))
    t_workflow_c = asyncio.run(workflow_run(c))

    shutil.rmtree(tmp, ignore_errors=True)
    print(f"ecommerce_order, {n} orders, SQLite store (WAL) in a temporary folder")
    print(f"  store only (floor), sequential   {rate(n, t_store)}")
    print(f"  agents, sequential               {rate(n, t_agents_1)}")
    print(f"  workflow, sequential             {rate(n, t_workflow_1)}")
    print(f"  agents, {c} in flight{' ' * (13 - len(str(c)))}{rate(n, t_agents_c)}")
    print(f"  workflow, {c} in flight{' ' * (11 - len(str(c)))}{rate(n, t_workflow_c)}")
    print(
        f"  workflow / agents: {t_workflow_1 / t_agents_1:.2f}x sequential, "
        f"{t_workflow_c / t_agents_c:.2f}x with {c} in flight; "
        f"agents / store only: {t_agents_1 / t_store:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
