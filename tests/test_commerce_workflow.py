"""``ecommerce_order`` end to end: the shipped manifests, the registry, the orchestrator and
the workflow engine over one SQLite store, with the fake clock."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from devskyy.adapters import commerce_payments as money
from devskyy.adapters import commerce_store as store
from devskyy.adapters.clock import FakeClock
from devskyy.model.manifests import Trigger, Workflow
from devskyy.model.resources import ResourceSet
from devskyy.model.runs import RunRecord, RunStatus, StepStatus
from devskyy.runtime.manifests import load_desired
from devskyy.runtime.orchestrator import Orchestrator
from devskyy.runtime.registry import Registry

COMMERCE_AGENTS = {"ecommerce", "inventory", "financial"}


@pytest.fixture(scope="module")
def live() -> ResourceSet:
    desired = load_desired(Path(__file__).resolve().parents[1] / "manifests")
    return ResourceSet(
        tuple(
            m
            for m in desired
            if (m.kind == "Agent" and m.name in COMMERCE_AGENTS)
            or (m.kind == "Workflow" and m.name == "ecommerce_order")
        )
    )


class Shop:
    """The runtime of the commerce agents, as ``devskyy run`` builds it."""

    def __init__(self, engine: Engine, clock: FakeClock, live: ResourceSet) -> None:
        self.engine = engine
        self.clock = clock
        self.registry = Registry(Orchestrator(clock), live, clock=clock, engine=engine)

    async def start(self) -> None:
        summary = await self.registry.discover_and_register_all_agents()
        assert self.registry.failures == {}, summary

    async def run(self, **params: Any) -> RunRecord:
        return await self.registry.workflow_engine().run("ecommerce_order", params)


def run_orders(shop: Shop, *param_sets: dict[str, Any]) -> list[RunRecord]:
    async def main() -> list[RunRecord]:
        await shop.start()
        try:
            return [await shop.run(**params) for params in param_sets]
        finally:
            await shop.registry.shutdown()

    return asyncio.run(main())


@pytest.fixture
def shop(engine: Engine, clock: FakeClock, live: ResourceSet) -> Shop:
    return Shop(engine, clock, live)


def statuses(record: RunRecord) -> dict[str, str]:
    return {s.name: s.status.value for s in record.steps}


def order_id_of(record: RunRecord) -> str:
    output = record.step("validate").output
    assert output is not None
    return str(output["order_id"])


def test_the_workflow_declares_the_compensation(live: ResourceSet) -> None:
    workflow = live.get("Workflow", "ecommerce_order")
    assert isinstance(workflow, Workflow)
    steps = {s.name: s for s in workflow.spec.steps}
    assert list(steps) == ["validate", "reserve", "payment", "record", "release"]
    assert steps["release"].needs == ["payment"]
    assert steps["release"].trigger is Trigger.ANY_FAILED
    assert steps["release"].input["capability"] == "release_inventory"
    # Every param has a default, so the workflow runs with no -p at all.
    assert all(p.default is not None for p in workflow.spec.params.values())
    assert workflow.spec.params["order_id"].default == ""


def test_defaults_place_a_new_paid_and_booked_order_on_each_run(shop: Shop) -> None:
    first, second = run_orders(shop, {}, {})
    for record in (first, second):
        assert record.status is RunStatus.SUCCEEDED, record
        assert statuses(record) == {
            "validate": "succeeded",
            "reserve": "succeeded",
            "payment": "succeeded",
            "record": "succeeded",
            "release": "skipped",
        }
    assert order_id_of(first) != order_id_of(second)
    for record in (first, second):
        order = store.get_order(shop.engine, order_id_of(record))
        assert order is not None
        assert order["status"] == "completed"
        payment = record.step("payment").output
        assert payment is not None
        assert (payment["amount_cents"], payment["card"]) == (1400, "visa ending 4242")
        booked = record.step("record").output
        assert booked is not None
        assert booked["balanced"] is True
    assert store.stock(shop.engine, "DSK-MUG-001") == 998
    assert store.count(shop.engine, store.sandbox_charges) == 2
    assert store.count(shop.engine, store.journal_entries) == 2


def test_running_again_with_the_same_order_id_charges_nothing_more(shop: Shop) -> None:
    first, second = run_orders(shop, {"order_id": "web-42"}, {"order_id": "web-42"})
    assert first.status is RunStatus.SUCCEEDED
    assert second.status is RunStatus.SUCCEEDED
    assert [
        (s.name, (s.output or {}).get("replayed")) for s in second.steps if s.name != "release"
    ] == [("validate", True), ("reserve", True), ("payment", True), ("record", True)]
    assert store.stock(shop.engine, "DSK-MUG-001") == 999
    assert store.count(shop.engine, store.sandbox_charges) == 1
    assert store.count(shop.engine, store.journal_entries) == 1


def test_declined_card_releases_the_stock_and_books_nothing(shop: Shop) -> None:
    (record,) = run_orders(
        shop,
        {
            "items": [{"sku": "DSK-HOOD-001", "quantity": 2}],
            "payment_method": "pm_card_chargeDeclined",
        },
    )
    assert record.status is RunStatus.FAILED
    assert statuses(record) == {
        "validate": "succeeded",
        "reserve": "succeeded",
        "payment": "failed",
        "record": "skipped",
        "release": "succeeded",
    }
    payment = record.step("payment")
    order_id = order_id_of(record)
    assert payment.attempts == 1  # a decline is permanent: never retried
    assert payment.error_type == "PaymentDeclined"
    assert payment.error is not None
    assert f"payment for order {order_id} declined: card_declined (card ending 0002)" in (
        payment.error
    )
    release = record.step("release").output
    assert release is not None
    assert release["released"] == [{"sku": "DSK-HOOD-001", "quantity": 2}]
    assert store.stock(shop.engine, "DSK-HOOD-001") == 80  # restored
    assert store.count(shop.engine, store.journal_entries) == 0
    assert money.ledger_lines(shop.engine) == []
    order = store.get_order(shop.engine, order_id)
    assert order is not None
    assert order["status"] == "cancelled"
    assert store.count(shop.engine, store.reservations, status="released") == 1


def test_a_retried_payment_step_charges_once(shop: Shop, clock: FakeClock) -> None:
    # The gateway takes the money but its answer times out; the engine retries the step.
    (record,) = run_orders(shop, {"payment_method": "pm_card_lostAnswer"})
    assert record.status is RunStatus.SUCCEEDED, record
    payment = record.step("payment")
    assert payment.attempts == 2
    assert payment.output is not None
    assert payment.output["replayed"] is True
    assert store.count(shop.engine, store.sandbox_charges) == 1
    assert store.count(shop.engine, store.payments) == 1
    assert store.count(shop.engine, store.journal_entries) == 1
    assert clock.sleeps == [10.0, 1.0]  # the gateway timeout, then the step's retry delay
    assert statuses(record)["release"] == "skipped"


def test_a_gateway_that_never_answers_fails_the_payment_and_releases(
    shop: Shop, clock: FakeClock
) -> None:
    (record,) = run_orders(shop, {"payment_method": "pm_card_timeout"})
    assert record.status is RunStatus.FAILED
    payment = record.step("payment")
    assert (payment.status, payment.attempts, payment.error_type) == (
        StepStatus.FAILED,
        3,
        "GatewayTimeout",
    )
    assert clock.sleeps == [10.0, 1.0, 10.0, 2.0, 10.0]
    assert statuses(record)["release"] == "succeeded"
    assert store.stock(shop.engine, "DSK-MUG-001") == 1000
    assert store.count(shop.engine, store.sandbox_charges) == 0
    assert store.count(shop.engine, store.journal_entries) == 0


def test_out_of_stock_fails_at_reserve_with_nothing_to_compensate(shop: Shop) -> None:
    (record,) = run_orders(shop, {"items": [{"sku": "DSK-KEYS-87", "quantity": 26}]})
    assert record.status is RunStatus.FAILED
    assert statuses(record) == {
        "validate": "succeeded",
        "reserve": "failed",
        "payment": "skipped",
        "record": "skipped",
        "release": "skipped",
    }
    reserve = record.step("reserve")
    assert (reserve.attempts, reserve.error_type) == (1, "OutOfStock")
    assert reserve.error is not None
    assert "out of stock: DSK-KEYS-87 has 25 left, the order needs 26" in reserve.error
    assert store.stock(shop.engine, "DSK-KEYS-87") == 25
    assert store.count(shop.engine, store.sandbox_charges) == 0


def test_an_invalid_order_fails_at_validate(shop: Shop) -> None:
    (record,) = run_orders(shop, {"items": [{"sku": "DSK-NOPE-1", "quantity": 1}]})
    assert record.status is RunStatus.FAILED
    validate = record.step("validate")
    assert (validate.attempts, validate.error_type) == (1, "OrderInvalid")
    assert validate.error is not None
    assert "invalid order: items[0].sku: unknown product DSK-NOPE-1" in validate.error
    assert store.count(shop.engine, store.orders) == 0


def test_fifty_concurrent_orders_for_ten_items_exactly_ten_succeed(shop: Shop) -> None:
    store_ready = asyncio.run(_prepare(shop))
    assert store_ready

    async def fifty() -> list[RunRecord]:
        await shop.start()
        try:
            return await asyncio.gather(
                *(shop.run(items=[{"sku": "DSK-HOOD-001", "quantity": 1}]) for _ in range(50))
            )
        finally:
            await shop.registry.shutdown()

    records = asyncio.run(fifty())
    succeeded = [r for r in records if r.status is RunStatus.SUCCEEDED]
    failed = [r for r in records if r.status is RunStatus.FAILED]
    assert (len(succeeded), len(failed)) == (10, 40)
    assert {r.step("reserve").error_type for r in failed} == {"OutOfStock"}
    assert all(r.step("payment").status is StepStatus.SKIPPED for r in failed)
    assert store.stock(shop.engine, "DSK-HOOD-001") == 0
    assert store.count(shop.engine, store.sandbox_charges) == 10
    assert store.count(shop.engine, store.journal_entries) == 10
    assert store.count(shop.engine, store.orders, status="completed") == 10
    assert store.count(shop.engine, store.reservations, status="committed") == 10


async def _prepare(shop: Shop) -> bool:
    # Seed through an agent start, then leave exactly ten hoodies.
    await shop.start()
    await shop.registry.shutdown()
    store.set_stock(shop.engine, "DSK-HOOD-001", 10)
    return store.stock(shop.engine, "DSK-HOOD-001") == 10


def test_declined_cards_do_not_lock_out_the_next_customer(shop: Shop) -> None:
    # A decline is a correct answer from a healthy gateway, not a sign of an unhealthy
    # agent; counting it lets five bad cards (card testing) block every payment.
    records = run_orders(shop, *([{"payment_method": "pm_card_chargeDeclined"}] * 5), {})
    assert [r.step("payment").error_type for r in records[:5]] == ["PaymentDeclined"] * 5
    assert records[-1].status is RunStatus.SUCCEEDED
