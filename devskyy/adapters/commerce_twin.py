"""The commerce store as a Protocol, its SQL binding, and the in-memory twin.

``CommerceStore`` is what the catalog, order and stock transactions of
``adapters/commerce_store`` promise, without the engine argument: seed, read the catalog
and stock, store and read orders, move an order's status, reserve an order's stock all or
nothing, and release it once. ``SqlCommerceStore(engine)`` binds the SQL functions to an
engine; ``MemoryCommerceStore`` keeps the same facts in dicts, behind one lock, with the
same answers (``tests/test_commerce_twin.py`` runs one contract over both).

The twin knows payments only as far as ``release`` needs them: ``note_payment`` records
that an order has a successful payment and moves it on, as ``commerce_payments`` does in
SQL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from copy import deepcopy
from typing import Any, Protocol

from devskyy.adapters import commerce_store as sql
from devskyy.adapters.commerce_store import ReleaseOutcome, ReserveOutcome
from devskyy.adapters.engine import Engine


class CommerceStore(Protocol):
    """Catalog, orders and stock (see ``adapters/commerce_store`` for each promise)."""

    def seed(
        self, catalog: Sequence[Mapping[str, Any]], chart: Sequence[Mapping[str, Any]]
    ) -> dict[str, int]: ...

    def catalog(self, skus: Iterable[str] | None = None) -> dict[str, dict[str, Any]]: ...

    def stock(self, sku: str) -> int | None: ...

    def set_stock(self, sku: str, units: int) -> None: ...

    def get_order(self, order_id: str) -> dict[str, Any] | None: ...

    def create_order(
        self, order: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], now: float
    ) -> tuple[dict[str, Any], bool]: ...

    def set_order_status(
        self, order_id: str, allowed_from: Iterable[str], status: str, now: float
    ) -> bool: ...

    def reserve(
        self,
        order_id: str,
        *,
        from_status: str,
        reserved_status: str,
        short_status: str,
        now: float,
    ) -> ReserveOutcome: ...

    def release(
        self, order_id: str, *, allowed_from: Iterable[str], status: str, now: float
    ) -> ReleaseOutcome: ...


class SqlCommerceStore:
    """The SQL commerce store, bound to one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def seed(
        self, catalog: Sequence[Mapping[str, Any]], chart: Sequence[Mapping[str, Any]]
    ) -> dict[str, int]:
        return sql.seed(self.engine, catalog, chart)

    def catalog(self, skus: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        return sql.catalog(self.engine, skus)

    def stock(self, sku: str) -> int | None:
        return sql.stock(self.engine, sku)

    def set_stock(self, sku: str, units: int) -> None:
        sql.set_stock(self.engine, sku, units)

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        return sql.get_order(self.engine, order_id)

    def create_order(
        self, order: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], now: float
    ) -> tuple[dict[str, Any], bool]:
        return sql.create_order(self.engine, order, lines, now)

    def set_order_status(
        self, order_id: str, allowed_from: Iterable[str], status: str, now: float
    ) -> bool:
        return sql.set_order_status(self.engine, order_id, allowed_from, status, now)

    def reserve(
        self,
        order_id: str,
        *,
        from_status: str,
        reserved_status: str,
        short_status: str,
        now: float,
    ) -> ReserveOutcome:
        return sql.reserve(
            self.engine,
            order_id,
            from_status=from_status,
            reserved_status=reserved_status,
            short_status=short_status,
            now=now,
        )

    def release(
        self, order_id: str, *, allowed_from: Iterable[str], status: str, now: float
    ) -> ReleaseOutcome:
        return sql.release(self.engine, order_id, allowed_from=allowed_from, status=status, now=now)


class MemoryCommerceStore:
    """The in-memory twin: the same facts and answers, one lock for atomicity."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._products: dict[str, dict[str, Any]] = {}
        self._accounts: dict[str, dict[str, Any]] = {}
        self._orders: dict[str, dict[str, Any]] = {}
        self._lines: dict[str, list[dict[str, Any]]] = {}
        self._reservations: dict[str, list[dict[str, Any]]] = {}
        self._paid: set[str] = set()
        self._next_reservation = 1

    def note_payment(
        self,
        order_id: str,
        *,
        allowed_from: Iterable[str] = ("reserved",),
        status: str = "paid",
        now: float = 0.0,
    ) -> None:
        """Record a successful payment of ``order_id`` and move the order to ``status``,
        as ``commerce_payments.record_payment`` does (``release`` then refuses it)."""
        with self._lock:
            self._paid.add(order_id)
            self._move(order_id, allowed_from, status, now)

    def seed(
        self, catalog: Sequence[Mapping[str, Any]], chart: Sequence[Mapping[str, Any]]
    ) -> dict[str, int]:
        with self._lock:
            added = {"products": 0, "accounts": 0}
            for row in chart:
                if row["code"] not in self._accounts:
                    self._accounts[row["code"]] = dict(row)
                    added["accounts"] += 1
            for item in catalog:
                if item["sku"] in self._products:
                    continue  # never overwrite a stored product or the stock it holds
                self._products[item["sku"]] = {
                    "sku": item["sku"],
                    "name": item["name"],
                    "price_cents": int(item["price_cents"]),
                    "cost_cents": int(item["cost_cents"]),
                    "currency": item["currency"],
                    "stock": int(item["stock"]),
                    "active": bool(item.get("active", True)),
                }
                added["products"] += 1
            return added

    def catalog(self, skus: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        with self._lock:
            wanted = self._products if skus is None else set(skus)
            return {s: dict(p) for s, p in self._products.items() if s in wanted}

    def stock(self, sku: str) -> int | None:
        with self._lock:
            product = self._products.get(sku)
            return None if product is None else int(product["stock"])

    def set_stock(self, sku: str, units: int) -> None:
        if units < 0:
            raise ValueError(f"stock of {sku} cannot be negative ({units})")
        with self._lock:
            if sku in self._products:
                self._products[sku]["stock"] = units

    def _order(self, order_id: str) -> dict[str, Any] | None:
        order = self._orders.get(order_id)
        if order is None:
            return None
        lines = sorted(self._lines[order_id], key=lambda line: line["sku"])
        return {**deepcopy(order), "lines": deepcopy(lines)}

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._order(order_id)

    def create_order(
        self, order: Mapping[str, Any], lines: Sequence[Mapping[str, Any]], now: float
    ) -> tuple[dict[str, Any], bool]:
        with self._lock:
            existing = self._order(order["id"])
            if existing is not None:
                return existing, False
            unknown = [line["sku"] for line in lines if line["sku"] not in self._products]
            if unknown:
                raise ValueError(f"unknown SKU(s): {', '.join(unknown)}")
            self._orders[order["id"]] = {**dict(order), "created_at": now, "updated_at": now}
            self._lines[order["id"]] = [dict(line) for line in lines]
            self._reservations[order["id"]] = []
            created = self._order(order["id"])
        assert created is not None
        return created, True

    def _move(self, order_id: str, allowed_from: Iterable[str], status: str, now: float) -> bool:
        order = self._orders.get(order_id)
        if order is None or order["status"] not in set(allowed_from):
            return False
        order["status"], order["updated_at"] = status, now
        return True

    def set_order_status(
        self, order_id: str, allowed_from: Iterable[str], status: str, now: float
    ) -> bool:
        with self._lock:
            return self._move(order_id, allowed_from, status, now)

    def _held(self, order_id: str) -> list[dict[str, Any]]:
        rows = sorted(self._reservations.get(order_id, []), key=lambda r: r["sku"])
        return [{k: r[k] for k in ("id", "sku", "quantity", "status")} for r in rows]

    def reserve(
        self,
        order_id: str,
        *,
        from_status: str,
        reserved_status: str,
        short_status: str,
        now: float,
    ) -> ReserveOutcome:
        with self._lock:
            order = self._orders.get(order_id)
            if order is None:
                return ReserveOutcome("missing")
            if order["status"] != from_status:
                return ReserveOutcome("already", order["status"], self._held(order_id))
            lines = sorted(self._lines[order_id], key=lambda line: line["sku"])
            for line in lines:  # all or nothing: check every line before taking any
                available = int(self._products[line["sku"]]["stock"])
                if available < line["quantity"]:
                    self._move(order_id, [from_status], short_status, now)
                    return ReserveOutcome(
                        "short",
                        short_status,
                        sku=line["sku"],
                        requested=line["quantity"],
                        available=available,
                    )
            for line in lines:
                self._products[line["sku"]]["stock"] -= line["quantity"]
                self._reservations[order_id].append(
                    {
                        "id": self._next_reservation,
                        "sku": line["sku"],
                        "quantity": line["quantity"],
                        "status": "held",
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                self._next_reservation += 1
            self._move(order_id, [from_status], reserved_status, now)
            return ReserveOutcome("reserved", reserved_status, self._held(order_id))

    def release(
        self, order_id: str, *, allowed_from: Iterable[str], status: str, now: float
    ) -> ReleaseOutcome:
        with self._lock:
            order = self._orders.get(order_id)
            if order is None:
                return ReleaseOutcome("missing")
            if order_id in self._paid:
                return ReleaseOutcome("paid", order["status"])
            released: list[dict[str, Any]] = []
            for held in sorted(self._reservations[order_id], key=lambda r: r["sku"]):
                if held["status"] != "held":
                    continue
                held["status"], held["updated_at"] = "released", now
                self._products[held["sku"]]["stock"] += held["quantity"]
                released.append({"sku": held["sku"], "quantity": held["quantity"]})
            moved = self._move(order_id, allowed_from, status, now)
            return ReleaseOutcome("released", status if moved else order["status"], released)
