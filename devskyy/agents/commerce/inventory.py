"""The inventory agent: ``reserve_inventory`` and its compensation ``release_inventory``.

``reserve_inventory(order_id)`` checks and takes the stock of every line of a
validated order in one transaction, all or nothing, with a conditional update per SKU
(``stock = stock - q WHERE stock >= q``): concurrent orders can never oversell. When a
line is short, nothing is taken, the order becomes ``out_of_stock`` and ``OutOfStock``
says which SKU and how many are left. Calling it again for a reserved (or later) order
takes nothing more and returns the reservations it holds (``replayed: true``).

``release_inventory(order_id)`` gives back every held reservation of an order exactly
once and cancels the order: the compensation step of ``ecommerce_order`` when the
payment fails. It refuses an order that has a successful payment (refund first).
"""

from __future__ import annotations

from typing import Any

from devskyy.agents.commerce.common import CommerceAgent, CommerceConfig
from devskyy.core.commerce import OrderNotFound, OrderStateError, OrderStatus, OutOfStock

_RELEASABLE = [OrderStatus.VALIDATED, OrderStatus.RESERVED, OrderStatus.PAYMENT_FAILED]
_HOLDING = {OrderStatus.RESERVED, OrderStatus.PAID, OrderStatus.COMPLETED}


class InventoryConfig(CommerceConfig):
    """``spec.config`` of the inventory agent (nothing to set yet; unknown keys refused)."""


class InventoryAgent(CommerceAgent):
    """Reserves and releases stock (see the module docstring)."""

    config_model = InventoryConfig
    operations = {
        "reserve_inventory": "reserve_inventory",
        "release_inventory": "release_inventory",
    }

    def __init__(self) -> None:
        super().__init__("Inventory Agent", version="2.0.0")

    async def reserve_inventory(self, order_id: str) -> dict[str, Any]:
        """Take the order's stock atomically; see the module docstring."""
        outcome = await self.db(
            self.store.reserve,
            order_id,
            from_status=OrderStatus.VALIDATED.value,
            reserved_status=OrderStatus.RESERVED.value,
            short_status=OrderStatus.OUT_OF_STOCK.value,
            now=self.clock.now(),
        )
        if outcome.result == "missing":
            raise OrderNotFound(order_id)
        if outcome.result == "short":
            assert outcome.sku is not None
            raise OutOfStock(outcome.sku, outcome.requested, outcome.available)
        status = OrderStatus(outcome.status or OrderStatus.VALIDATED.value)
        if outcome.result == "already" and status not in _HOLDING:
            raise OrderStateError(f"order {order_id} is {status.value}; it holds no stock")
        held = [r for r in outcome.reservations if r["status"] != "released"]
        left = await self.db(self.store.catalog, [r["sku"] for r in held])
        return {
            "order_id": order_id,
            "status": status.value,
            "reservations": [
                {"sku": r["sku"], "quantity": r["quantity"], "status": r["status"]} for r in held
            ],
            "stock_left": {sku: row["stock"] for sku, row in sorted(left.items())},
            "replayed": outcome.result == "already",
        }

    async def release_inventory(self, order_id: str, reason: str = "") -> dict[str, Any]:
        """Give back the order's held stock once and cancel it; see the module docstring."""
        outcome = await self.db(
            self.store.release,
            order_id,
            allowed_from=[s.value for s in _RELEASABLE],
            status=OrderStatus.CANCELLED.value,
            now=self.clock.now(),
        )
        if outcome.result == "missing":
            raise OrderNotFound(order_id)
        if outcome.result == "paid":
            raise OrderStateError(
                f"order {order_id} has a successful payment; refund it before releasing its stock"
            )
        return {
            "order_id": order_id,
            "status": outcome.status,
            "released": outcome.released,
            "reason": reason,
        }
