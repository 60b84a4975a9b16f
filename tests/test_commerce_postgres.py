"""The commerce store on a real PostgreSQL server: the same non-overselling guarantees.

The server is ``DEVSKYY_TEST_POSTGRES_URL`` when set (a database the tests may create
databases in); otherwise a throw-away cluster is started with the machine's ``initdb``
and ``pg_ctl`` on 127.0.0.1 (as the ``postgres`` user when the tests run as root, since
PostgreSQL refuses to run as root). Without a server or the psycopg driver the tests
are skipped.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from commerce_fixtures import open_shop
from pg_server import fresh_database
from sqlalchemy import Engine

from devskyy.adapters import commerce_payments as money
from devskyy.adapters import commerce_store as store
from devskyy.adapters.clock import FakeClock
from devskyy.adapters.db import open_engine
from devskyy.agents.commerce.common import seed_store
from devskyy.core.commerce import OutOfStock
from devskyy.model.resources import ResourceSet
from devskyy.model.runs import RunRecord, RunStatus
from devskyy.runtime.manifests import load_desired
from devskyy.runtime.orchestrator import Orchestrator
from devskyy.runtime.registry import Registry

pytestmark = pytest.mark.slow


@pytest.fixture
def engine(server_url: str) -> Iterator[Engine]:
    with fresh_database(server_url) as url:
        engine = open_engine(url)
        seed_store(engine)
        yield engine
        engine.dispose()


def test_the_tables_are_created_on_postgresql(engine: Engine) -> None:
    assert engine.dialect.name == "postgresql"
    assert store.stock(engine, "DSK-MUG-001") == 1000
    assert seed_store(engine) == {"products": 0, "accounts": 0}


def test_fifty_concurrent_reservations_for_ten_items_on_postgresql(engine: Engine) -> None:
    store.set_stock(engine, "DSK-HOOD-001", 10)
    for n in range(50):
        store.create_order(
            engine,
            {
                "id": f"o{n}",
                "customer": "a@example.com",
                "currency": "USD",
                "subtotal_cents": 5900,
                "tax_cents": 0,
                "total_cents": 5900,
                "cost_cents": 2350,
                "status": "validated",
            },
            [
                {
                    "sku": "DSK-HOOD-001",
                    "name": "h",
                    "quantity": 1,
                    "unit_price_cents": 5900,
                    "unit_cost_cents": 2350,
                }
            ],
            1.0,
        )
    barrier = threading.Barrier(50, timeout=60)

    def attempt(n: int) -> str:
        barrier.wait()
        outcome = store.reserve(
            engine,
            f"o{n}",
            from_status="validated",
            reserved_status="reserved",
            short_status="out_of_stock",
            now=2.0,
        )
        return outcome.result

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(attempt, range(50)))
    assert results.count("reserved") == 10
    assert results.count("short") == 40
    assert store.stock(engine, "DSK-HOOD-001") == 0
    assert store.count(engine, store.reservations, status="held") == 10


def test_whole_orders_on_postgresql_concurrently(engine: Engine) -> None:
    store.set_stock(engine, "DSK-CAP-001", 10)

    async def main() -> list[object]:
        shop = await open_shop(engine, FakeClock())
        return await asyncio.gather(
            *(shop.order(items=[{"sku": "DSK-CAP-001", "quantity": 1}]) for _ in range(30)),
            return_exceptions=True,
        )

    results = asyncio.run(main())
    booked = [r for r in results if isinstance(r, dict)]
    assert len(booked) == 10
    assert all(isinstance(r, OutOfStock) for r in results if not isinstance(r, dict))
    assert all(r["balanced"] for r in booked)
    assert store.stock(engine, "DSK-CAP-001") == 0
    assert store.count(engine, store.journal_entries) == 10
    assert store.count(engine, store.sandbox_charges) == 10
    lines = money.ledger_lines(engine)
    assert sum(line["amount_cents"] for line in lines) == 0


def test_the_workflow_on_postgresql_sells_exactly_the_stock(engine: Engine) -> None:
    # The whole runtime (registry, orchestrator, engine with its run records) on PostgreSQL.
    store.set_stock(engine, "DSK-HOOD-001", 5)
    desired = load_desired(Path(__file__).resolve().parents[1] / "manifests")
    live = ResourceSet(
        tuple(
            m
            for m in desired
            if (m.kind == "Agent" and m.name in {"ecommerce", "inventory", "financial"})
            or (m.kind == "Workflow" and m.name == "ecommerce_order")
        )
    )

    async def main() -> list[RunRecord]:
        clock = FakeClock()
        registry = Registry(Orchestrator(clock), live, clock=clock, engine=engine)
        await registry.discover_and_register_all_agents()
        try:
            runner = registry.workflow_engine()
            items = [{"sku": "DSK-HOOD-001", "quantity": 1}]
            return await asyncio.gather(
                *(runner.run("ecommerce_order", {"items": items}) for _ in range(20))
            )
        finally:
            await registry.shutdown()

    records = asyncio.run(main())
    assert sum(r.status is RunStatus.SUCCEEDED for r in records) == 5
    assert {r.step("reserve").error_type for r in records if r.status is RunStatus.FAILED} == {
        "OutOfStock"
    }
    assert store.stock(engine, "DSK-HOOD-001") == 0
    assert store.count(engine, store.journal_entries) == 5
