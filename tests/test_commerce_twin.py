"""One contract over both commerce stores: the SQL store and its in-memory twin."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devskyy.adapters import commerce_payments as money
from devskyy.adapters.commerce_twin import CommerceStore, MemoryCommerceStore, SqlCommerceStore
from devskyy.adapters.db import open_engine
from devskyy.agents.commerce.common import seed_rows

PRODUCTS, CHART = seed_rows()
MUG, OTHER = PRODUCTS[0]["sku"], PRODUCTS[1]["sku"]

Paid = Callable[[str], None]


@pytest.fixture(params=["sql", "memory"])
def shop(request: pytest.FixtureRequest, state_url: str) -> Iterator[tuple[CommerceStore, Paid]]:
    if request.param == "memory":
        twin = MemoryCommerceStore()
        twin.seed(PRODUCTS, CHART)
        yield twin, twin.note_payment
        return
    engine = open_engine(state_url)
    store = SqlCommerceStore(engine)
    store.seed(PRODUCTS, CHART)

    def paid(order_id: str) -> None:
        row = {
            "order_id": order_id,
            "idempotency_key": f"key-{order_id}",
            "gateway": "sandbox",
            "charge_id": "ch_1",
            "amount_cents": 100,
            "currency": "USD",
            "status": "succeeded",
            "decline_code": None,
            "card_brand": "visa",
            "card_last4": "4242",
        }
        money.record_payment(engine, row, allowed_from=["reserved"], status="paid", now=3.0)

    try:
        yield store, paid
    finally:
        engine.dispose()


def order(store: CommerceStore, order_id: str, lines: dict[str, int]) -> dict[str, Any]:
    created, _ = store.create_order(
        {
            "id": order_id,
            "customer": "a@example.com",
            "currency": "USD",
            "subtotal_cents": 100,
            "tax_cents": 0,
            "total_cents": 100,
            "cost_cents": 10,
            "status": "validated",
        },
        [
            {"sku": sku, "name": sku, "quantity": q, "unit_price_cents": 100, "unit_cost_cents": 10}
            for sku, q in lines.items()
        ],
        1.0,
    )
    return created


def reserve(store: CommerceStore, order_id: str) -> Any:
    return store.reserve(
        order_id,
        from_status="validated",
        reserved_status="reserved",
        short_status="out_of_stock",
        now=2.0,
    )


def release(store: CommerceStore, order_id: str) -> Any:
    return store.release(
        order_id, allowed_from=["reserved", "out_of_stock"], status="cancelled", now=4.0
    )


def test_seeding_is_idempotent_and_never_resets_stock(shop: tuple[CommerceStore, Paid]) -> None:
    store, _ = shop
    store.set_stock(MUG, 3)
    assert store.seed(PRODUCTS, CHART) == {"products": 0, "accounts": 0}
    assert store.stock(MUG) == 3
    assert store.stock("NOPE") is None
    assert sorted(store.catalog([MUG, "NOPE"])) == [MUG]
    assert len(store.catalog()) == len(PRODUCTS)


def test_orders_are_stored_once_with_their_lines(shop: tuple[CommerceStore, Paid]) -> None:
    store, _ = shop
    first = order(store, "o1", {OTHER: 2, MUG: 1})
    assert [(line["sku"], line["quantity"]) for line in first["lines"]] == sorted(
        [(MUG, 1), (OTHER, 2)]
    )
    again, created = store.create_order({"id": "o1", "status": "validated"}, [], 9.0)
    assert (created, again) == (False, first)
    assert store.get_order("o1") == first
    assert store.get_order("o2") is None
    assert store.set_order_status("o1", ["reserved"], "paid", 5.0) is False
    assert store.set_order_status("o1", ["validated"], "reserved", 5.0) is True
    moved = store.get_order("o1")
    assert moved is not None
    assert (moved["status"], moved["updated_at"]) == ("reserved", 5.0)


def test_reserve_takes_every_line_or_nothing(shop: tuple[CommerceStore, Paid]) -> None:
    store, _ = shop
    store.set_stock(MUG, 5)
    store.set_stock(OTHER, 1)
    order(store, "short", {MUG: 2, OTHER: 3})
    outcome = reserve(store, "short")
    assert (outcome.result, outcome.status, outcome.sku, outcome.requested, outcome.available) == (
        "short",
        "out_of_stock",
        OTHER,
        3,
        1,
    )
    assert (store.stock(MUG), store.stock(OTHER)) == (5, 1)  # nothing taken
    order(store, "ok", {MUG: 2, OTHER: 1})
    taken = reserve(store, "ok")
    assert (taken.result, taken.status) == ("reserved", "reserved")
    assert [(r["sku"], r["quantity"], r["status"]) for r in taken.reservations] == sorted(
        [(MUG, 2, "held"), (OTHER, 1, "held")]
    )
    assert (store.stock(MUG), store.stock(OTHER)) == (3, 0)
    again = reserve(store, "ok")
    assert (again.result, again.status, again.reservations) == (
        "already",
        "reserved",
        taken.reservations,
    )
    assert reserve(store, "missing").result == "missing"


def test_release_gives_stock_back_once_and_never_for_a_paid_order(
    shop: tuple[CommerceStore, Paid],
) -> None:
    store, paid = shop
    store.set_stock(MUG, 4)
    order(store, "o1", {MUG: 3})
    reserve(store, "o1")
    first = release(store, "o1")
    assert (first.result, first.status, first.released) == (
        "released",
        "cancelled",
        [{"sku": MUG, "quantity": 3}],
    )
    second = release(store, "o1")
    assert (second.result, second.status, second.released) == ("released", "cancelled", [])
    assert store.stock(MUG) == 4
    order(store, "o2", {MUG: 1})
    reserve(store, "o2")
    paid("o2")
    refused = release(store, "o2")
    assert (refused.result, refused.status) == ("paid", "paid")
    assert store.stock(MUG) == 3
    assert release(store, "nope").result == "missing"


def test_concurrent_reservations_never_oversell(shop: tuple[CommerceStore, Paid]) -> None:
    store, _ = shop
    store.set_stock(MUG, 10)
    for i in range(30):
        order(store, f"o{i}", {MUG: 1})
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: reserve(store, f"o{i}").result, range(30)))
    assert results.count("reserved") == 10
    assert results.count("short") == 20
    assert store.stock(MUG) == 0
