"""The commerce tables of the devskyy store and the transactions over them.

Products and stock, orders and their lines, stock reservations, payments (one per
idempotency key), a double-entry ledger (accounts, journal entries, lines), and the
sandbox payment gateway's own record of charges. This module declares every table and
the catalog, order and stock transactions; ``commerce_payments`` has the payment,
ledger and sandbox-charge transactions. The rules (what is a valid order,
which status may follow which, what a sale entry looks like) live in
``devskyy.core.commerce``; this module only reads and writes, atomically, and reports
what it found as plain values for the agents to decide on.

Concurrency. Every writer runs in ``write_transaction``: on SQLite it opens with
``BEGIN IMMEDIATE`` (the write lock is taken up front, so a read-then-write
transaction never fails to upgrade), after the threads of this process have queued on
one lock per engine (they would otherwise meet SQLite's sleeping busy handler); on
PostgreSQL the order row is locked with ``SELECT … FOR UPDATE``. Stock is taken only
by the conditional
``UPDATE … SET stock = stock - :q WHERE sku = :s AND stock >= :q`` with a row-count
check, which cannot oversell under either database; a ``CHECK (stock >= 0)`` is the
last line of defence. Use a file or server database with threads: each connection to
``sqlite:///:memory:`` is a different, empty database.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    UniqueConstraint,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from devskyy.adapters import failpoints
from devskyy.adapters.db import metadata

products = Table(
    "commerce_products",
    metadata,
    Column("sku", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("price_cents", Integer, nullable=False),
    Column("cost_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("stock", Integer, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    CheckConstraint("stock >= 0", name="ck_commerce_products_stock"),
    CheckConstraint("price_cents >= 0 AND cost_cents >= 0", name="ck_commerce_products_money"),
)

orders = Table(
    "commerce_orders",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("customer", String(254), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("subtotal_cents", Integer, nullable=False),
    Column("tax_cents", Integer, nullable=False),
    Column("total_cents", Integer, nullable=False),
    Column("cost_cents", Integer, nullable=False),
    Column("status", String(20), nullable=False, index=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

order_lines = Table(
    "commerce_order_lines",
    metadata,
    Column("order_id", String(64), ForeignKey("commerce_orders.id"), primary_key=True),
    Column("sku", String(40), ForeignKey("commerce_products.sku"), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_cents", Integer, nullable=False),
    Column("unit_cost_cents", Integer, nullable=False),
    CheckConstraint("quantity > 0", name="ck_commerce_order_lines_quantity"),
)

reservations = Table(
    "commerce_reservations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", String(64), ForeignKey("commerce_orders.id"), nullable=False, index=True),
    Column("sku", String(40), ForeignKey("commerce_products.sku"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("status", String(12), nullable=False),  # held | released | committed
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("order_id", "sku", name="uq_commerce_reservations_order_sku"),
    CheckConstraint("quantity > 0", name="ck_commerce_reservations_quantity"),
)

payments = Table(
    "commerce_payments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", String(64), ForeignKey("commerce_orders.id"), nullable=False, index=True),
    Column("idempotency_key", String(128), nullable=False, unique=True),
    Column("gateway", String(40), nullable=False),
    Column("charge_id", String(64), nullable=True),
    Column("amount_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(12), nullable=False),  # succeeded | declined
    Column("decline_code", String(40), nullable=True),
    Column("card_brand", String(20), nullable=False),
    Column("card_last4", String(4), nullable=False),
    Column("created_at", Float, nullable=False),
)

accounts = Table(
    "commerce_accounts",
    metadata,
    Column("code", String(10), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("type", String(10), nullable=False),
)

journal_entries = Table(
    "commerce_journal_entries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("reference", String(128), nullable=False, unique=True),
    Column("order_id", String(64), ForeignKey("commerce_orders.id"), nullable=True, index=True),
    Column("description", String(200), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", Float, nullable=False),
)

journal_lines = Table(
    "commerce_journal_lines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "entry_id", Integer, ForeignKey("commerce_journal_entries.id"), nullable=False, index=True
    ),
    Column("account", String(10), ForeignKey("commerce_accounts.code"), nullable=False),
    Column("amount_cents", Integer, nullable=False),
    Column("memo", String(200), nullable=False, default=""),
    CheckConstraint("amount_cents <> 0", name="ck_commerce_journal_lines_nonzero"),
)

sandbox_charges = Table(
    "commerce_sandbox_charges",
    metadata,
    Column("idempotency_key", String(128), primary_key=True),
    Column("charge_id", String(64), nullable=False, unique=True),
    Column("fingerprint", String(64), nullable=False),
    Column("amount_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(12), nullable=False),
    Column("decline_code", String(40), nullable=True),
    Column("card_last4", String(4), nullable=False),
    Column("created_at", Float, nullable=False),
)


# --------------------------------------------------------------------------- plumbing


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One read-write transaction; commits on success, rolls back on any exception.

    On SQLite the write lock is taken by ``BEGIN IMMEDIATE`` (waiting up to the busy
    timeout), so reads inside the transaction see the state the writes apply to.
    Not reentrant: a transaction never opens another one.
    """
    if engine.dialect.name != "sqlite":
        with engine.connect() as conn:
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        return
    # SQLite has one writer at a time and its busy handler waits by sleeping in growing
    # steps; threads of this process queue on a lock instead and wake as soon as the
    # writer before them commits. Other processes still meet the busy timeout.
    with _writer_lock(engine), engine.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


# One lock per engine (so per SQLite file), forgotten with the engine.
_WRITER_LOCKS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_WRITER_LOCKS_GUARD = threading.Lock()


def _writer_lock(engine: Engine) -> threading.Lock:
    with _WRITER_LOCKS_GUARD:
        lock = _WRITER_LOCKS.get(engine)
        if lock is None:
            lock = _WRITER_LOCKS[engine] = threading.Lock()
        return lock


def _insert_missing(
    conn: Connection, table: Table, key: str, rows: Sequence[dict[str, Any]]
) -> int:
    """Insert the rows whose ``key`` is not stored yet; returns how many were inserted."""
    if not rows:
        return 0
    wanted = [row[key] for row in rows]
    present = set(conn.scalars(select(table.c[key]).where(table.c[key].in_(wanted))))
    missing = [row for row in rows if row[key] not in present]
    if missing:
        conn.execute(insert(table), missing)
    return len(missing)


def seed(
    engine: Engine, catalog: Sequence[Mapping[str, Any]], chart: Sequence[Mapping[str, Any]]
) -> dict[str, int]:
    """Insert the catalog's products and the chart's accounts that are not stored yet.

    Idempotent and safe to race: existing rows (and the stock they hold now) are
    never overwritten. Returns how many products and accounts were added.
    """
    product_rows = [
        {
            "sku": item["sku"],
            "name": item["name"],
            "price_cents": int(item["price_cents"]),
            "cost_cents": int(item["cost_cents"]),
            "currency": item["currency"],
            "stock": int(item["stock"]),
            "active": bool(item.get("active", True)),
        }
        for item in catalog
    ]
    account_rows = [dict(row) for row in chart]
    for attempt in (1, 2):
        try:
            with write_transaction(engine) as conn:
                added_accounts = _insert_missing(conn, accounts, "code", account_rows)
                added_products = _insert_missing(conn, products, "sku", product_rows)
        except IntegrityError:
            # Another process seeded the same rows between our read and our insert
            # (possible on PostgreSQL); the second pass sees them and adds nothing.
            if attempt == 2:
                raise
            continue
        break
    return {"products": added_products, "accounts": added_accounts}


def catalog(engine: Engine, skus: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """Products by SKU (all of them, or the given SKUs that exist)."""
    query = select(products)
    if skus is not None:
        query = query.where(products.c.sku.in_(list(skus)))
    with engine.connect() as conn:
        return {row.sku: dict(row._mapping) for row in conn.execute(query)}


def stock(engine: Engine, sku: str) -> int | None:
    """Units of ``sku`` on hand (not reserved), None for an unknown SKU."""
    with engine.connect() as conn:
        value = conn.scalar(select(products.c.stock).where(products.c.sku == sku))
    return None if value is None else int(value)


def set_stock(engine: Engine, sku: str, units: int) -> None:
    """Set the stock of ``sku`` (restocking, and tests)."""
    with write_transaction(engine) as conn:
        conn.execute(update(products).where(products.c.sku == sku).values(stock=units))


# --------------------------------------------------------------------------- orders


def _order(conn: Connection, order_id: str, *, lock: bool = False) -> dict[str, Any] | None:
    query = select(orders).where(orders.c.id == order_id)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        return None
    order = dict(row._mapping)
    lines = conn.execute(
        select(order_lines).where(order_lines.c.order_id == order_id).order_by(order_lines.c.sku)
    )
    order["lines"] = [{k: v for k, v in line._mapping.items() if k != "order_id"} for line in lines]
    return order


def get_order(engine: Engine, order_id: str) -> dict[str, Any] | None:
    """The order with its ``lines``, or None."""
    with engine.connect() as conn:
        return _order(conn, order_id)


def create_order(
    engine: Engine, order: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], now: float
) -> tuple[dict[str, Any], bool]:
    """Store a validated order; returns ``(order, created)``.

    When an order with that id exists already it is returned untouched with
    ``created=False``: the caller decides whether it is the same order.
    """
    with write_transaction(engine) as conn:
        existing = _order(conn, order["id"], lock=True)
        if existing is not None:
            return existing, False
        conn.execute(insert(orders).values(**order, created_at=now, updated_at=now))
        conn.execute(insert(order_lines), [{**line, "order_id": order["id"]} for line in lines])
        created = _order(conn, order["id"])
    assert created is not None
    failpoints.hit("order.stored")
    return created, True


def set_order_status(
    engine: Engine, order_id: str, allowed_from: Iterable[str], status: str, now: float
) -> bool:
    """Move the order to ``status`` if it is in one of ``allowed_from``; True when moved."""
    with write_transaction(engine) as conn:
        return move_status(conn, order_id, allowed_from, status, now)


def move_status(
    conn: Connection, order_id: str, allowed_from: Iterable[str], status: str, now: float
) -> bool:
    result = conn.execute(
        update(orders)
        .where(orders.c.id == order_id, orders.c.status.in_(list(allowed_from)))
        .values(status=status, updated_at=now)
    )
    return result.rowcount == 1


# --------------------------------------------------------------------------- stock


@dataclass(frozen=True)
class ReserveOutcome:
    """What ``reserve`` did.

    ``result`` is ``reserved`` (stock taken now), ``already`` (the order was past
    ``validated``: nothing taken, ``reservations`` are the ones it holds),
    ``short`` (not enough of ``sku``: nothing taken, the order is marked out of stock)
    or ``missing`` (no such order).
    """

    result: str
    status: str | None = None
    reservations: list[dict[str, Any]] = field(default_factory=list)
    sku: str | None = None
    requested: int = 0
    available: int = 0


class _Short(Exception):
    def __init__(self, sku: str, requested: int) -> None:
        self.sku = sku
        self.requested = requested


def _reservations(conn: Connection, order_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(
            reservations.c.id, reservations.c.sku, reservations.c.quantity, reservations.c.status
        )
        .where(reservations.c.order_id == order_id)
        .order_by(reservations.c.sku)
    )
    return [dict(row._mapping) for row in rows]


def reserve(
    engine: Engine,
    order_id: str,
    *,
    from_status: str,
    reserved_status: str,
    short_status: str,
    now: float,
) -> ReserveOutcome:
    """Take the stock of every line of the order, all or nothing, in one transaction.

    Lines are taken in SKU order so that two orders never wait on each other's rows in
    opposite orders (no deadlock on PostgreSQL).
    """
    try:
        with write_transaction(engine) as conn:
            order = _order(conn, order_id, lock=True)
            if order is None:
                return ReserveOutcome("missing")
            if order["status"] != from_status:
                return ReserveOutcome("already", order["status"], _reservations(conn, order_id))
            for line in sorted(order["lines"], key=lambda item: item["sku"]):
                taken = conn.execute(
                    update(products)
                    .where(products.c.sku == line["sku"], products.c.stock >= line["quantity"])
                    .values(stock=products.c.stock - line["quantity"])
                )
                if taken.rowcount != 1:
                    raise _Short(line["sku"], line["quantity"])
                conn.execute(
                    insert(reservations).values(
                        order_id=order_id,
                        sku=line["sku"],
                        quantity=line["quantity"],
                        status="held",
                        created_at=now,
                        updated_at=now,
                    )
                )
            move_status(conn, order_id, [from_status], reserved_status, now)
            return ReserveOutcome("reserved", reserved_status, _reservations(conn, order_id))
    except _Short as short:
        # The transaction above rolled back every line taken so far.
        with write_transaction(engine) as conn:
            move_status(conn, order_id, [from_status], short_status, now)
            available = conn.scalar(select(products.c.stock).where(products.c.sku == short.sku))
        return ReserveOutcome(
            "short",
            short_status,
            sku=short.sku,
            requested=short.requested,
            available=int(available or 0),
        )


@dataclass(frozen=True)
class ReleaseOutcome:
    """What ``release`` did: ``released`` lines (empty when nothing was held), or
    ``result`` ``paid`` (refused: the order has a successful payment) / ``missing``."""

    result: str
    status: str | None = None
    released: list[dict[str, Any]] = field(default_factory=list)


def release(
    engine: Engine, order_id: str, *, allowed_from: Iterable[str], status: str, now: float
) -> ReleaseOutcome:
    """Give back the stock of every held reservation of the order, once.

    Each reservation flips ``held -> released`` with a conditional update, and its
    stock is returned only when that update matched: a second call (or two calls at
    once) gives back nothing more. An order with a successful payment is refused.
    """
    with write_transaction(engine) as conn:
        order = _order(conn, order_id, lock=True)
        if order is None:
            return ReleaseOutcome("missing")
        paid = conn.scalar(
            select(func.count())
            .select_from(payments)
            .where(payments.c.order_id == order_id, payments.c.status == "succeeded")
        )
        if paid:
            return ReleaseOutcome("paid", order["status"])
        released: list[dict[str, Any]] = []
        for held in _reservations(conn, order_id):
            if held["status"] != "held":
                continue
            flipped = conn.execute(
                update(reservations)
                .where(reservations.c.id == held["id"], reservations.c.status == "held")
                .values(status="released", updated_at=now)
            )
            if flipped.rowcount != 1:
                continue
            conn.execute(
                update(products)
                .where(products.c.sku == held["sku"])
                .values(stock=products.c.stock + held["quantity"])
            )
            released.append({"sku": held["sku"], "quantity": held["quantity"]})
        moved = move_status(conn, order_id, allowed_from, status, now)
        return ReleaseOutcome("released", status if moved else order["status"], released)


def count(engine: Engine, table: Table, **where: Any) -> int:
    """Rows of ``table`` matching the column equalities in ``where``."""
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with engine.connect() as conn:
        return int(conn.scalar(query) or 0)
