"""The commerce tables: seeding, orders, reservations under real concurrency, payments,
the ledger's invariants."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from devskyy.adapters import commerce_payments as money
from devskyy.adapters import commerce_store as store
from devskyy.adapters.db import TABLE_MODULES, open_engine
from devskyy.agents.commerce.common import seed_catalog, seed_store


@pytest.fixture
def engine(state_url: str) -> Iterator[Engine]:
    engine = open_engine(state_url)
    seed_store(engine)
    yield engine
    engine.dispose()


def make_order(
    engine: Engine, order_id: str, lines: dict[str, int], status: str = "validated"
) -> None:
    store.create_order(
        engine,
        {
            "id": order_id,
            "customer": "a@example.com",
            "currency": "USD",
            "subtotal_cents": 100,
            "tax_cents": 0,
            "total_cents": 100,
            "cost_cents": 10,
            "status": status,
        },
        [
            {"sku": sku, "name": sku, "quantity": q, "unit_price_cents": 100, "unit_cost_cents": 10}
            for sku, q in lines.items()
        ],
        1.0,
    )


def reserve(engine: Engine, order_id: str) -> store.ReserveOutcome:
    return store.reserve(
        engine,
        order_id,
        from_status="validated",
        reserved_status="reserved",
        short_status="out_of_stock",
        now=2.0,
    )


def release(engine: Engine, order_id: str) -> store.ReleaseOutcome:
    return store.release(
        engine,
        order_id,
        allowed_from=["validated", "reserved", "payment_failed"],
        status="cancelled",
        now=3.0,
    )


def test_the_module_is_registered_and_the_tables_exist(engine: Engine) -> None:
    assert "devskyy.adapters.commerce_store" in TABLE_MODULES
    names = set(store.metadata.tables)
    assert {
        "commerce_products",
        "commerce_orders",
        "commerce_order_lines",
        "commerce_reservations",
        "commerce_payments",
        "commerce_accounts",
        "commerce_journal_entries",
        "commerce_journal_lines",
        "commerce_sandbox_charges",
    } <= names


def test_seeding_is_idempotent_and_never_resets_stock(engine: Engine) -> None:
    shipped = seed_catalog()
    assert len(store.catalog(engine)) == len(shipped) >= 5
    assert store.count(engine, store.accounts) == 6
    store.set_stock(engine, "DSK-MUG-001", 3)
    assert seed_store(engine) == {"products": 0, "accounts": 0}
    assert store.stock(engine, "DSK-MUG-001") == 3
    assert store.stock(engine, "NOPE") is None


def test_seeding_from_many_threads_at_once_inserts_each_row_once(state_url: str) -> None:
    engine = open_engine(state_url)
    barrier = threading.Barrier(8, timeout=60)

    def seed() -> dict[str, int]:
        barrier.wait()
        return seed_store(engine)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: seed(), range(8)))
    assert sum(r["products"] for r in results) == len(seed_catalog())
    assert sum(r["accounts"] for r in results) == 6
    engine.dispose()


def test_create_order_returns_the_existing_one(engine: Engine) -> None:
    make_order(engine, "o1", {"DSK-MUG-001": 2})
    order = store.get_order(engine, "o1")
    assert order is not None
    assert order["status"] == "validated"
    assert order["lines"] == [
        {
            "sku": "DSK-MUG-001",
            "name": "DSK-MUG-001",
            "quantity": 2,
            "unit_price_cents": 100,
            "unit_cost_cents": 10,
        }
    ]
    again, created = store.create_order(engine, {"id": "o1"}, [], 9.0)
    assert created is False
    assert again == order
    assert store.get_order(engine, "nope") is None


def test_reserve_takes_every_line_or_nothing(engine: Engine) -> None:
    store.set_stock(engine, "DSK-MUG-001", 5)
    store.set_stock(engine, "DSK-TEE-001", 1)
    make_order(engine, "o1", {"DSK-MUG-001": 2, "DSK-TEE-001": 2})
    outcome = reserve(engine, "o1")
    assert (outcome.result, outcome.sku, outcome.requested, outcome.available) == (
        "short",
        "DSK-TEE-001",
        2,
        1,
    )
    # The mug line was taken first (SKU order) and rolled back with the rest.
    assert store.stock(engine, "DSK-MUG-001") == 5
    assert store.stock(engine, "DSK-TEE-001") == 1
    assert store.count(engine, store.reservations) == 0
    assert store.get_order(engine, "o1")["status"] == "out_of_stock"  # type: ignore[index]


def test_reserve_is_idempotent(engine: Engine) -> None:
    store.set_stock(engine, "DSK-MUG-001", 5)
    make_order(engine, "o1", {"DSK-MUG-001": 2})
    first = reserve(engine, "o1")
    assert first.result == "reserved"
    assert first.reservations == [{"id": 1, "sku": "DSK-MUG-001", "quantity": 2, "status": "held"}]
    second = reserve(engine, "o1")
    assert (second.result, second.status) == ("already", "reserved")
    assert second.reservations == first.reservations
    assert store.stock(engine, "DSK-MUG-001") == 3
    assert reserve(engine, "missing").result == "missing"


def test_fifty_concurrent_reservations_for_ten_items_sell_exactly_ten(engine: Engine) -> None:
    store.set_stock(engine, "DSK-HOOD-001", 10)
    for n in range(50):
        make_order(engine, f"o{n}", {"DSK-HOOD-001": 1})
    barrier = threading.Barrier(50, timeout=60)

    def attempt(n: int) -> str:
        barrier.wait()  # all fifty threads hit the database at the same moment
        return reserve(engine, f"o{n}").result

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(attempt, range(50)))
    assert results.count("reserved") == 10
    assert results.count("short") == 40
    assert store.stock(engine, "DSK-HOOD-001") == 0
    assert store.count(engine, store.reservations, status="held") == 10
    assert store.count(engine, store.orders, status="out_of_stock") == 40


def test_concurrent_multi_line_orders_never_oversell_any_sku(engine: Engine) -> None:
    store.set_stock(engine, "DSK-MUG-001", 7)
    store.set_stock(engine, "DSK-TEE-001", 7)
    for n in range(30):
        # Opposite line orders in the request; the store locks rows in SKU order.
        lines = (
            {"DSK-MUG-001": 1 + n % 2, "DSK-TEE-001": 1}
            if n % 2
            else {"DSK-TEE-001": 1, "DSK-MUG-001": 1}
        )
        make_order(engine, f"o{n}", lines)
    barrier = threading.Barrier(30, timeout=60)

    def attempt(n: int) -> store.ReserveOutcome:
        barrier.wait()
        return reserve(engine, f"o{n}")

    with ThreadPoolExecutor(30) as pool:
        outcomes = list(pool.map(attempt, range(30)))
    taken_mugs = sum(1 + n % 2 for n, o in enumerate(outcomes) if o.result == "reserved")
    taken_tees = sum(1 for o in outcomes if o.result == "reserved")
    assert store.stock(engine, "DSK-MUG-001") == 7 - taken_mugs >= 0
    assert store.stock(engine, "DSK-TEE-001") == 7 - taken_tees >= 0
    held = store.count(engine, store.reservations, status="held")
    assert held == 2 * taken_tees


def test_the_database_itself_refuses_negative_stock(engine: Engine) -> None:
    # The last line of defence, should any writer skip the conditional update.
    store.set_stock(engine, "DSK-MUG-001", 1)
    with pytest.raises(IntegrityError), store.write_transaction(engine) as conn:
        conn.execute(
            update(store.products)
            .where(store.products.c.sku == "DSK-MUG-001")
            .values(stock=store.products.c.stock - 2)
        )
    assert store.stock(engine, "DSK-MUG-001") == 1


def test_release_gives_stock_back_once(engine: Engine) -> None:
    store.set_stock(engine, "DSK-MUG-001", 5)
    make_order(engine, "o1", {"DSK-MUG-001": 2})
    reserve(engine, "o1")
    first = release(engine, "o1")
    assert (first.result, first.status, first.released) == (
        "released",
        "cancelled",
        [{"sku": "DSK-MUG-001", "quantity": 2}],
    )
    second = release(engine, "o1")
    assert (second.result, second.status, second.released) == ("released", "cancelled", [])
    assert store.stock(engine, "DSK-MUG-001") == 5
    assert release(engine, "missing").result == "missing"


def test_concurrent_releases_of_one_order_give_stock_back_once(engine: Engine) -> None:
    store.set_stock(engine, "DSK-MUG-001", 5)
    make_order(engine, "o1", {"DSK-MUG-001": 3})
    reserve(engine, "o1")
    barrier = threading.Barrier(10, timeout=60)

    def attempt(_: int) -> int:
        barrier.wait()
        return len(release(engine, "o1").released)

    with ThreadPoolExecutor(10) as pool:
        assert sum(pool.map(attempt, range(10))) == 1
    assert store.stock(engine, "DSK-MUG-001") == 5


def payment(order_id: str, key: str, status: str = "succeeded") -> dict[str, Any]:
    return {
        "order_id": order_id,
        "idempotency_key": key,
        "gateway": "sandbox",
        "charge_id": "ch_1" if status == "succeeded" else None,
        "amount_cents": 100,
        "currency": "USD",
        "status": status,
        "decline_code": None if status == "succeeded" else "card_declined",
        "card_brand": "visa",
        "card_last4": "4242",
    }


def test_a_paid_order_cannot_be_released(engine: Engine) -> None:
    make_order(engine, "o1", {"DSK-MUG-001": 1})
    reserve(engine, "o1")
    money.record_payment(
        engine, payment("o1", "k1"), allowed_from=["reserved"], status="paid", now=3.0
    )
    outcome = release(engine, "o1")
    assert (outcome.result, outcome.status) == ("paid", "paid")
    assert store.count(engine, store.reservations, status="held") == 1


def test_one_payment_per_idempotency_key(engine: Engine) -> None:
    make_order(engine, "o1", {"DSK-MUG-001": 1}, status="reserved")
    row, created = money.record_payment(
        engine, payment("o1", "k1"), allowed_from=["reserved"], status="paid", now=3.0
    )
    assert created is True
    assert store.get_order(engine, "o1")["status"] == "paid"  # type: ignore[index]
    again, created = money.record_payment(
        engine, payment("o1", "k1", "declined"), allowed_from=["reserved"], status="x", now=4.0
    )
    assert created is False
    assert again == row
    assert store.count(engine, store.payments) == 1
    assert money.payment_by_key(engine, "k1") == row
    assert money.succeeded_payment(engine, "o1") == row
    with pytest.raises(IntegrityError), store.write_transaction(engine) as conn:
        conn.execute(insert(store.payments).values(**payment("o1", "k1"), created_at=5.0))


def sale_lines(total: int = 100) -> list[dict[str, Any]]:
    return [
        {"account": "1100", "amount_cents": total, "memo": "charge"},
        {"account": "4000", "amount_cents": -total, "memo": "sales"},
    ]


def test_post_sale_books_once_and_completes_the_order(engine: Engine) -> None:
    make_order(engine, "o1", {"DSK-MUG-001": 1})
    reserve(engine, "o1")
    store.set_order_status(engine, "o1", ["reserved"], "paid", 3.0)
    entry = {"reference": "sale:o1", "order_id": "o1", "description": "d", "currency": "USD"}
    first, created = money.post_sale(
        engine, entry, sale_lines(), allowed_from=["paid"], status="completed", now=4.0
    )
    assert created is True
    assert first["lines"] == [
        {"account": "1100", "amount_cents": 100, "memo": "charge"},
        {"account": "4000", "amount_cents": -100, "memo": "sales"},
    ]
    again, created = money.post_sale(
        engine, entry, sale_lines(), allowed_from=["paid"], status="completed", now=5.0
    )
    assert (again, created) == (first, False)
    assert store.count(engine, store.journal_entries) == 1
    assert store.get_order(engine, "o1")["status"] == "completed"  # type: ignore[index]
    assert store.count(engine, store.reservations, status="committed") == 1
    assert [(r["account"], r["amount_cents"]) for r in money.ledger_lines(engine, "o1")] == [
        ("1100", 100),
        ("4000", -100),
    ]


def test_post_sale_refuses_unbalanced_lines_before_writing(engine: Engine) -> None:
    make_order(engine, "o1", {"DSK-MUG-001": 1})
    entry = {"reference": "sale:o1", "order_id": "o1", "description": "d", "currency": "USD"}
    lines = sale_lines()
    lines[1]["amount_cents"] = -99
    with pytest.raises(ValueError, match="journal entry sale:o1 is not balanced"):
        money.post_sale(engine, entry, lines, allowed_from=["paid"], status="completed", now=1.0)
    with pytest.raises(ValueError, match="not balanced"):
        money.post_sale(engine, entry, lines[:1], allowed_from=["paid"], status="completed", now=1)
    assert store.count(engine, store.journal_entries) == 0
    assert store.count(engine, store.journal_lines) == 0


def test_ledger_lines_need_a_known_account(engine: Engine) -> None:
    entry = {"reference": "r1", "order_id": None, "description": "d", "currency": "USD"}
    lines = [
        {"account": "9999", "amount_cents": 5, "memo": ""},
        {"account": "4000", "amount_cents": -5, "memo": ""},
    ]
    with pytest.raises(IntegrityError):
        money.post_sale(engine, entry, lines, allowed_from=[], status="x", now=1.0)
    assert store.count(engine, store.journal_entries) == 0


def test_sandbox_charges_are_unique_per_key(engine: Engine) -> None:
    charge = {
        "idempotency_key": "k1",
        "charge_id": "ch_1",
        "fingerprint": "f",
        "amount_cents": 100,
        "currency": "USD",
        "status": "succeeded",
        "decline_code": None,
        "card_last4": "4242",
    }
    stored, created = money.put_sandbox_charge(engine, charge, 1.0)
    assert created is True
    again, created = money.put_sandbox_charge(engine, {**charge, "charge_id": "ch_2"}, 2.0)
    assert created is False
    assert again == stored
    assert money.sandbox_charge(engine, "k1") == stored
    assert store.count(engine, store.sandbox_charges) == 1


def test_stock_plus_held_units_is_conserved_under_mixed_concurrent_traffic(
    engine: Engine,
) -> None:
    # Reservations and releases of many orders race; no unit is ever lost or invented.
    store.set_stock(engine, "DSK-MUG-001", 20)
    store.set_stock(engine, "DSK-TEE-001", 15)
    for n in range(60):
        make_order(engine, f"o{n}", {"DSK-MUG-001": 1 + n % 3, "DSK-TEE-001": 1 + n % 2})
    barrier = threading.Barrier(60, timeout=60)

    def traffic(n: int) -> None:
        barrier.wait()
        if reserve(engine, f"o{n}").result == "reserved" and n % 2:
            release(engine, f"o{n}")
            release(engine, f"o{n}")  # a repeated compensation gives nothing more back

    with ThreadPoolExecutor(60) as pool:
        list(pool.map(traffic, range(60)))
    with engine.connect() as conn:
        held = dict(
            conn.execute(
                select(store.reservations.c.sku, func.sum(store.reservations.c.quantity))
                .where(store.reservations.c.status == "held")
                .group_by(store.reservations.c.sku)
            ).all()
        )
    mugs, tees = store.stock(engine, "DSK-MUG-001"), store.stock(engine, "DSK-TEE-001")
    assert mugs is not None
    assert tees is not None
    assert mugs >= 0
    assert tees >= 0
    assert mugs + held.get("DSK-MUG-001", 0) == 20
    assert tees + held.get("DSK-TEE-001", 0) == 15
    assert (
        store.count(engine, store.orders, status="reserved")
        == store.count(engine, store.reservations, status="held") // 2
    )
