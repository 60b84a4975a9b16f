"""The commerce agents work on the ``CommerceStore`` Protocol: SQL in production, the twin in tests.

The same order through the e-commerce and inventory agents on the in-memory twin (no
engine, no file) and on the SQL store of a bound engine gives the same answers and leaves
the same stock; a replay is recognised by order id on both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.commerce_twin import CommerceStore, MemoryCommerceStore, SqlCommerceStore
from devskyy.adapters.db import open_engine
from devskyy.agents.commerce import EcommerceAgent, InventoryAgent
from devskyy.core.commerce import OrderStateError, OutOfStock
from devskyy.runtime.agent import AgentContext

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def agents(
    kind: str, tmp_path: Path, state_url: str
) -> tuple[EcommerceAgent, InventoryAgent, CommerceStore]:
    clock = FakeClock(start=1_000.0)
    engine = open_engine(state_url) if kind == "sql" else None
    twin = MemoryCommerceStore()
    shop: list[Any] = []
    for name, cls in (("ecommerce", EcommerceAgent), ("inventory", InventoryAgent)):
        agent = cls()
        agent.bind(AgentContext(name=name, engine=engine, clock=clock, state_dir=tmp_path))
        if kind == "memory":
            agent.use_store(twin)
        assert run(agent.initialize()), agent.last_error
        shop.append(agent)
    ecommerce, inventory = shop
    return ecommerce, inventory, ecommerce.store


@pytest.mark.parametrize("kind", ["sql", "memory"])
def test_an_order_on_either_store(kind: str, tmp_path: Path, state_url: str) -> None:
    ecommerce, inventory, store = agents(kind, tmp_path, state_url)
    if kind == "sql":  # production: the SQL store of the bound engine, one per agent
        assert isinstance(store, SqlCommerceStore)
        assert isinstance(inventory.store, SqlCommerceStore)
        assert inventory.store.engine is store.engine is ecommerce.engine
    else:
        assert isinstance(store, MemoryCommerceStore)
        assert inventory.store is store
    before = store.stock("DSK-TEE-001")
    assert before == 250

    order = run(ecommerce.validate_order(order_id="ord_1", items="DSK-TEE-001:2"))
    assert (order["order_id"], order["status"], order["total_cents"]) == (
        "ord_1",
        "validated",
        order["subtotal_cents"] + order["tax_cents"],
    )
    again = run(ecommerce.validate_order(order_id="ord_1", items="DSK-TEE-001:2"))
    assert again["replayed"] is True
    assert again["total_cents"] == order["total_cents"]

    held = run(inventory.reserve_inventory("ord_1"))
    assert held["status"] == "reserved"
    assert held["replayed"] is False
    assert held["reservations"] == [{"sku": "DSK-TEE-001", "quantity": 2, "status": "held"}]
    assert held["stock_left"] == {"DSK-TEE-001": 248}
    assert run(inventory.reserve_inventory("ord_1"))["replayed"] is True
    assert store.stock("DSK-TEE-001") == 248  # a replay takes nothing more

    released = run(inventory.release_inventory("ord_1", reason="payment failed"))
    assert released["status"] == "cancelled"
    assert released["released"] == [{"sku": "DSK-TEE-001", "quantity": 2}]
    assert store.stock("DSK-TEE-001") == 250
    with pytest.raises(OrderStateError):
        run(inventory.reserve_inventory("ord_1"))

    run(ecommerce.validate_order(order_id="ord_2", items="DSK-HOOD-001:80"))
    run(ecommerce.validate_order(order_id="ord_3", items="DSK-HOOD-001:1"))
    run(inventory.reserve_inventory("ord_2"))
    with pytest.raises(OutOfStock, match="DSK-HOOD-001"):
        run(inventory.reserve_inventory("ord_3"))
    assert store.get_order("ord_3")["status"] == "out_of_stock"  # type: ignore[index]
    assert store.stock("DSK-HOOD-001") == 0


def test_on_the_twin_no_state_file_is_opened(tmp_path: Path, state_url: str) -> None:
    ecommerce, _, store = agents("memory", tmp_path, state_url)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="not initialized"):
        _ = ecommerce.engine  # payments and the ledger would need one
    assert store.catalog(["DSK-MUG-001"])["DSK-MUG-001"]["stock"] == 1000
