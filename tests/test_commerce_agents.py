"""The commerce agents one by one, on a real store, with the fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from commerce_fixtures import Shop, open_shop
from sqlalchemy import Engine, select

from devskyy.adapters import commerce_payments as money
from devskyy.adapters import commerce_store as store
from devskyy.adapters.clock import FakeClock
from devskyy.adapters.db import metadata
from devskyy.agents.commerce import EcommerceAgent, FinancialAgent, InventoryAgent
from devskyy.agents.commerce.gateway import GatewayTimeout
from devskyy.core.commerce import (
    OrderInvalid,
    OrderNotFound,
    OrderStateError,
    OutOfStock,
    PaymentDeclined,
)
from devskyy.errors import MissingInput
from devskyy.runtime.agent import AgentContext, AgentStatus
from devskyy.runtime.orchestrator import Orchestrator

T = TypeVar("T")


def run(awaitable: Awaitable[T]) -> T:
    async def main() -> T:
        return await awaitable

    return asyncio.run(main())


@pytest.fixture
def shop(engine: Engine, clock: FakeClock) -> Shop:
    return run(open_shop(engine, clock))


def status(engine: Engine, order_id: str) -> str:
    order = store.get_order(engine, order_id)
    assert order is not None
    return str(order["status"])


# -- life cycle ---------------------------------------------------------------------


def test_initialize_seeds_a_fresh_store(engine: Engine, clock: FakeClock) -> None:
    assert store.catalog(engine) == {}
    agent = InventoryAgent()
    agent.bind(AgentContext(name="inventory", engine=engine, clock=clock))
    assert agent.status is AgentStatus.INITIALIZING
    assert run(agent.initialize()) is True
    assert agent.status is AgentStatus.HEALTHY
    assert store.stock(engine, "DSK-MUG-001") == 1000
    health = run(agent.health_check())
    assert (health["name"], health["status"], health["version"]) == (
        "inventory",
        "healthy",
        "2.0.0",
    )


def test_an_unbound_agent_uses_the_default_store_under_its_state_dir(tmp_path: Path) -> None:
    agent = EcommerceAgent()
    agent.bind(AgentContext(name="ecommerce", state_dir=tmp_path / ".devskyy"))
    assert run(agent.initialize()) is True
    order = run(agent.validate_order())
    assert (tmp_path / ".devskyy" / "state.db").is_file()
    assert store.get_order(agent.engine, order["order_id"]) is not None
    run(agent.shutdown())


def test_initialize_reports_a_store_it_cannot_open(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    agent = FinancialAgent()
    agent.bind(AgentContext(name="financial", state_dir=blocker / "sub"))
    assert run(agent.initialize()) is False
    assert agent.status is AgentStatus.FAILED
    assert agent.last_error is not None
    with pytest.raises(RuntimeError, match="Financial Agent is not initialized"):
        run(agent.process_payment("o1"))


def test_config_is_checked_by_each_agents_model() -> None:
    agent = EcommerceAgent()
    with pytest.raises(ValueError, match="taxRateBps"):
        agent.bind(AgentContext(name="ecommerce", config={"taxRateBps": -1}))
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        InventoryAgent().bind(AgentContext(name="inventory", config={"ttl": 5}))
    with pytest.raises(ValueError, match="gateway"):
        FinancialAgent().bind(AgentContext(name="financial", config={"gateway": "stripe"}))


def test_capabilities_are_dispatched_and_bad_inputs_named(shop: Shop) -> None:
    order = run(shop.ecommerce.execute_core_function(capability="validate_order"))
    reserved = run(
        shop.inventory.execute_core_function(
            capability="reserve_inventory", order_id=order["order_id"]
        )
    )
    assert reserved["status"] == "reserved"
    with pytest.raises(MissingInput) as caught:
        run(shop.inventory.execute_core_function(capability="restock", order_id="x"))
    assert str(caught.value) == (
        "inventory has no capability 'restock' (it has: release_inventory, reserve_inventory)"
    )
    with pytest.raises(MissingInput) as caught:
        run(shop.financial.execute_core_function(capability="process_payment"))
    assert str(caught.value) == "process_payment: missing a required argument: 'order_id'"
    with pytest.raises(MissingInput, match="unexpected keyword argument 'cvc'"):
        run(shop.financial.execute_core_function(order_id="x", cvc="123"))
    # Without a capability an agent does its first one.
    default = run(shop.inventory.execute_core_function(order_id=order["order_id"]))
    assert default["replayed"] is True


# -- e-commerce ---------------------------------------------------------------------


def test_validate_order_defaults_place_a_new_order_each_time(shop: Shop) -> None:
    first = run(shop.ecommerce.validate_order())
    second = run(shop.ecommerce.validate_order())
    assert first["order_id"] != second["order_id"]
    assert first["order_id"].startswith("ord_")
    assert {k: v for k, v in first.items() if k != "order_id"} == {
        "customer": "customer@example.com",
        "currency": "USD",
        "lines": [
            {
                "sku": "DSK-MUG-001",
                "name": "DevSkyy logo mug, 350 ml",
                "quantity": 1,
                "unit_price_cents": 1400,
                "line_total_cents": 1400,
            }
        ],
        "subtotal_cents": 1400,
        "tax_cents": 0,
        "total_cents": 1400,
        "total": "14.00 USD",
        "status": "validated",
        "replayed": False,
    }
    assert store.count(shop.engine, store.orders) == 2


def test_validate_order_with_an_id_is_idempotent(shop: Shop) -> None:
    items = [{"sku": "DSK-TEE-001", "quantity": 2}]
    first = run(shop.ecommerce.validate_order("web-1001", items, "ann@example.com"))
    again = run(shop.ecommerce.validate_order("web-1001", items, "ann@example.com"))
    assert again["replayed"] is True
    assert {k: v for k, v in again.items() if k != "replayed"} == {
        k: v for k, v in first.items() if k != "replayed"
    }
    with pytest.raises(OrderInvalid) as caught:
        run(
            shop.ecommerce.validate_order(
                "web-1001", [{"sku": "DSK-TEE-001", "quantity": 3}], "ann@example.com"
            )
        )
    assert str(caught.value) == (
        "invalid order: order_id: order web-1001 exists already with other contents"
    )
    assert store.count(shop.engine, store.orders) == 1


def test_a_failed_order_must_be_placed_again_under_a_new_id(shop: Shop) -> None:
    run(shop.ecommerce.validate_order("web-1", [{"sku": "DSK-MUG-001"}]))
    run(shop.inventory.reserve_inventory("web-1"))
    with pytest.raises(PaymentDeclined):
        run(shop.financial.process_payment("web-1", "pm_card_chargeDeclined"))
    run(shop.inventory.release_inventory("web-1"))
    with pytest.raises(OrderStateError) as caught:
        run(shop.ecommerce.validate_order("web-1", [{"sku": "DSK-MUG-001"}]))
    assert str(caught.value) == "order web-1 is cancelled; place it again under a new order id"


def test_validate_order_reports_every_problem_and_stores_nothing(shop: Shop) -> None:
    with pytest.raises(OrderInvalid) as caught:
        run(
            shop.ecommerce.validate_order(
                "",
                [{"sku": "DSK-NOPE-1", "quantity": 1}, {"sku": "DSK-MUG-001", "quantity": 0}],
                customer="x",
                currency="EUR",
            )
        )
    assert caught.value.problems == [
        "customer: 'x' is not an e-mail address",
        "currency: 'EUR' is not accepted; this shop sells in USD",
        "items[0].sku: unknown product DSK-NOPE-1",
        "items[1].quantity: 0 is not a positive integer",
    ]
    assert store.count(shop.engine, store.orders) == 0


def test_validate_order_applies_the_configured_tax_and_limits(
    engine: Engine, clock: FakeClock
) -> None:
    shop = run(
        open_shop(engine, clock, {"ecommerce": {"taxRateBps": 825, "maxQuantityPerLine": 3}})
    )
    order = run(shop.ecommerce.validate_order(items="DSK-TEE-001:2,DSK-STK-010"))
    assert (order["subtotal_cents"], order["tax_cents"], order["total_cents"]) == (
        5499,
        454,
        5953,  # 5499 * 8.25 % = 453.67 -> 454
    )
    with pytest.raises(OrderInvalid, match=r"4 of DSK-MUG-001, at most 3 allowed"):
        run(shop.ecommerce.validate_order(items="DSK-MUG-001:4"))


# -- inventory ----------------------------------------------------------------------


def test_reserve_takes_stock_and_replays(shop: Shop) -> None:
    order = run(shop.ecommerce.validate_order(items="DSK-HOOD-001:3,DSK-MUG-001"))
    reserved = run(shop.inventory.reserve_inventory(order["order_id"]))
    assert reserved == {
        "order_id": order["order_id"],
        "status": "reserved",
        "reservations": [
            {"sku": "DSK-HOOD-001", "quantity": 3, "status": "held"},
            {"sku": "DSK-MUG-001", "quantity": 1, "status": "held"},
        ],
        "stock_left": {"DSK-HOOD-001": 77, "DSK-MUG-001": 999},
        "replayed": False,
    }
    again = run(shop.inventory.reserve_inventory(order["order_id"]))
    assert again["replayed"] is True
    assert again["stock_left"] == {"DSK-HOOD-001": 77, "DSK-MUG-001": 999}


def test_reserve_out_of_stock_takes_nothing(shop: Shop) -> None:
    store.set_stock(shop.engine, "DSK-KEYS-87", 2)
    order = run(shop.ecommerce.validate_order(items="DSK-MUG-001,DSK-KEYS-87:3"))
    with pytest.raises(OutOfStock) as caught:
        run(shop.inventory.reserve_inventory(order["order_id"]))
    assert str(caught.value) == "out of stock: DSK-KEYS-87 has 2 left, the order needs 3"
    assert store.stock(shop.engine, "DSK-MUG-001") == 1000
    assert status(shop.engine, order["order_id"]) == "out_of_stock"
    with pytest.raises(OrderStateError, match="is out_of_stock; it holds no stock"):
        run(shop.inventory.reserve_inventory(order["order_id"]))
    with pytest.raises(OrderNotFound, match="order nope does not exist"):
        run(shop.inventory.reserve_inventory("nope"))


def test_fifty_concurrent_agent_reservations_for_ten_items(shop: Shop) -> None:
    store.set_stock(shop.engine, "DSK-HOOD-001", 10)

    async def fifty() -> list[BaseException | dict[str, Any]]:
        orders = [await shop.ecommerce.validate_order(items="DSK-HOOD-001") for _ in range(50)]
        return await asyncio.gather(
            *(shop.inventory.reserve_inventory(o["order_id"]) for o in orders),
            return_exceptions=True,
        )

    results = run(fifty())
    assert sum(isinstance(r, dict) for r in results) == 10
    assert all(isinstance(r, OutOfStock | dict) for r in results)
    assert store.stock(shop.engine, "DSK-HOOD-001") == 0


def test_release_gives_stock_back_once_and_cancels(shop: Shop) -> None:
    order = run(shop.ecommerce.validate_order(items="DSK-CAP-001:4"))
    run(shop.inventory.reserve_inventory(order["order_id"]))
    assert store.stock(shop.engine, "DSK-CAP-001") == 146
    released = run(shop.inventory.release_inventory(order["order_id"], reason="changed mind"))
    assert released == {
        "order_id": order["order_id"],
        "status": "cancelled",
        "released": [{"sku": "DSK-CAP-001", "quantity": 4}],
        "reason": "changed mind",
    }
    assert run(shop.inventory.release_inventory(order["order_id"]))["released"] == []
    assert store.stock(shop.engine, "DSK-CAP-001") == 150
    with pytest.raises(OrderNotFound):
        run(shop.inventory.release_inventory("nope"))


def test_release_refuses_a_paid_order(shop: Shop) -> None:
    order = run(shop.ecommerce.validate_order())
    run(shop.inventory.reserve_inventory(order["order_id"]))
    run(shop.financial.process_payment(order["order_id"]))
    with pytest.raises(OrderStateError) as caught:
        run(shop.inventory.release_inventory(order["order_id"]))
    assert str(caught.value) == (
        f"order {order['order_id']} has a successful payment; refund it before releasing its stock"
    )
    assert store.stock(shop.engine, "DSK-MUG-001") == 999


# -- financial ----------------------------------------------------------------------


def reserved_order(shop: Shop, items: str = "DSK-MUG-001") -> str:
    order = run(shop.ecommerce.validate_order(items=items))
    run(shop.inventory.reserve_inventory(order["order_id"]))
    return str(order["order_id"])


def test_process_payment_charges_the_stored_total_once(shop: Shop) -> None:
    order_id = reserved_order(shop, "DSK-TEE-001:2")
    paid = run(shop.financial.process_payment(order_id))
    assert {k: v for k, v in paid.items() if k not in ("charge_id", "payment_id")} == {
        "order_id": order_id,
        "status": "succeeded",
        "amount_cents": 5000,
        "currency": "USD",
        "amount": "50.00 USD",
        "card": "visa ending 4242",
        "gateway": "sandbox",
        "idempotency_key": f"order-{order_id}-payment",
        "replayed": False,
    }
    assert status(shop.engine, order_id) == "paid"
    again = run(shop.financial.process_payment(order_id))
    assert again["replayed"] is True
    assert again["charge_id"] == paid["charge_id"]
    assert store.count(shop.engine, store.sandbox_charges) == 1
    assert store.count(shop.engine, store.payments) == 1


def test_a_declined_payment_is_stored_and_never_retried_into_a_charge(shop: Shop) -> None:
    order_id = reserved_order(shop)
    with pytest.raises(PaymentDeclined) as caught:
        run(shop.financial.process_payment(order_id, "pm_card_chargeDeclinedInsufficientFunds"))
    assert str(caught.value) == (
        f"payment for order {order_id} declined: insufficient_funds (card ending 9995)"
    )
    assert status(shop.engine, order_id) == "payment_failed"
    # Same key, even with a good card now: the key's answer stands (a new order is needed).
    with pytest.raises(PaymentDeclined):
        run(shop.financial.process_payment(order_id, "pm_card_visa"))
    assert store.count(shop.engine, store.sandbox_charges) == 1
    payment = money.payment_by_key(shop.engine, f"order-{order_id}-payment")
    assert payment is not None
    assert (payment["status"], payment["decline_code"]) == ("declined", "insufficient_funds")
    with pytest.raises(OrderStateError, match="has no successful payment to record"):
        run(shop.financial.record_transaction(order_id))
    assert store.count(shop.engine, store.journal_entries) == 0


def test_lost_answer_then_retry_charges_once(shop: Shop, clock: FakeClock) -> None:
    order_id = reserved_order(shop)
    with pytest.raises(GatewayTimeout):
        run(shop.financial.process_payment(order_id, "pm_card_lostAnswer"))
    assert status(shop.engine, order_id) == "reserved"  # outcome unknown: nothing recorded
    assert store.count(shop.engine, store.payments) == 0
    paid = run(shop.financial.process_payment(order_id, "pm_card_lostAnswer"))
    assert (paid["status"], paid["replayed"]) == ("succeeded", True)
    assert store.count(shop.engine, store.sandbox_charges) == 1
    assert clock.sleeps == [10.0]


def test_gateway_timeout_follows_the_config_on_the_fake_clock(
    engine: Engine, clock: FakeClock
) -> None:
    shop = run(open_shop(engine, clock, {"financial": {"gatewayTimeoutSeconds": 3.5}}))
    order_id = reserved_order(shop)
    with pytest.raises(GatewayTimeout, match=r"did not answer within 3\.5s"):
        run(shop.financial.process_payment(order_id, "pm_card_timeout"))
    assert clock.sleeps == [3.5]
    assert store.count(engine, store.sandbox_charges) == 0


def test_only_a_reserved_order_is_charged(shop: Shop) -> None:
    order = run(shop.ecommerce.validate_order())
    with pytest.raises(OrderStateError) as caught:
        run(shop.financial.process_payment(order["order_id"]))
    assert str(caught.value) == (
        f"order {order['order_id']} is validated; only a reserved order can be charged"
    )
    with pytest.raises(OrderNotFound):
        run(shop.financial.process_payment("nope"))
    assert store.count(shop.engine, store.sandbox_charges) == 0


def test_concurrent_payments_of_one_order_charge_once(shop: Shop) -> None:
    order_id = reserved_order(shop)

    async def both() -> list[dict[str, Any]]:
        return await asyncio.gather(*(shop.financial.process_payment(order_id) for _ in range(5)))

    results = run(both())
    assert len({r["charge_id"] for r in results}) == 1
    assert sorted(r["replayed"] for r in results).count(False) <= 1
    assert store.count(shop.engine, store.sandbox_charges) == 1
    assert store.count(shop.engine, store.payments) == 1
    assert status(shop.engine, order_id) == "paid"


def test_record_transaction_books_a_balanced_entry_once(engine: Engine, clock: FakeClock) -> None:
    shop = run(open_shop(engine, clock, {"ecommerce": {"taxRateBps": 1000}}))
    order_id = reserved_order(shop, "DSK-MUG-001:2")
    paid = run(shop.financial.process_payment(order_id))
    booked = run(shop.financial.record_transaction(order_id))
    assert {k: v for k, v in booked.items() if k != "entry_id"} == {
        "order_id": order_id,
        "status": "completed",
        "reference": f"sale:{order_id}",
        "lines": [
            {"account": "1100", "amount_cents": 3080, "memo": f"charge {paid['charge_id']}"},
            {"account": "4000", "amount_cents": -2800, "memo": "sales"},
            {"account": "2100", "amount_cents": -280, "memo": "sales tax"},
            {"account": "5000", "amount_cents": 1040, "memo": "cost of goods sold"},
            {"account": "1300", "amount_cents": -1040, "memo": "goods shipped"},
        ],
        "balanced": True,
        "replayed": False,
    }
    assert paid["amount_cents"] == 3080  # the charge and the ledger agree to the cent
    again = run(shop.financial.record_transaction(order_id))
    assert (again["entry_id"], again["replayed"]) == (booked["entry_id"], True)
    assert store.count(engine, store.journal_entries) == 1
    assert status(engine, order_id) == "completed"
    assert store.count(engine, store.reservations, status="committed") == 1
    with pytest.raises(OrderNotFound):
        run(shop.financial.record_transaction("nope"))


def test_card_numbers_never_reach_the_store(shop: Shop) -> None:
    order_id = reserved_order(shop)
    run(shop.financial.process_payment(order_id, "4242 4242 4242 4242"))
    run(shop.financial.record_transaction(order_id))
    with shop.engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name.startswith("commerce_"):
                for row in conn.execute(select(table)):
                    text = " ".join(str(v) for v in row)
                    assert "4242424242424242" not in text
                    assert "4242 4242" not in text


def test_the_guides_execute_task_passes_the_order_downstream(shop: Shop) -> None:
    # The guide's dependency graph: the inventory agent depends on the e-commerce agent
    # and receives its result as ``upstream``.
    async def main() -> dict[str, Any]:
        orchestrator = Orchestrator(shop.clock)
        await orchestrator.register_agent(shop.ecommerce, ["validate_order"])
        await orchestrator.register_agent(
            shop.inventory, ["reserve_inventory", "release_inventory"], ["ecommerce"]
        )
        return await orchestrator.execute_task(
            "place_order", {}, required_capabilities=["validate_order", "reserve_inventory"]
        )

    task = run(main())
    assert task["status"] == "completed", task
    order_id = task["results"]["ecommerce"]["order_id"]
    assert task["results"]["inventory"]["order_id"] == order_id
    assert task["results"]["inventory"]["status"] == "reserved"
    assert status(shop.engine, order_id) == "reserved"
