"""The e-commerce agent (capability ``validate_order``): checks an order and records it.

``validate_order(order_id="", items=…, customer=…, currency=…)`` checks every line
against the catalog in the store (known, active SKU; positive quantity within the
limits; the shop's currency), prices it in integer cents with the configured tax rate,
and stores it as ``validated``. Every problem is reported at once (``OrderInvalid``).

An empty ``order_id`` means "a new order": running the ``ecommerce_order`` workflow
twice places two orders. Inside a workflow step the new id is derived from the run and
the step (``runtime.step_context``), so the same step re-run after a crash (``runs
resume``) finds the order its first attempt stored and reuses it: no orphan order.
Outside a run a random id is generated. Giving an id makes the call idempotent: the same
order again returns the stored one (``replayed: true``), the same id with other contents
is refused, and an order that already failed or was cancelled must be placed anew under
a new id. Stock is not checked here; the inventory agent
reserves it atomically.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field

from devskyy.agents.commerce.common import CommerceAgent, CommerceConfig
from devskyy.core.commerce import (
    OrderInvalid,
    OrderRules,
    OrderStateError,
    OrderStatus,
    PricedOrder,
    Product,
    format_cents,
    parse_items,
    validate_order,
)
from devskyy.runtime.step_context import current_step

DEFAULT_ITEMS: list[dict[str, Any]] = [{"sku": "DSK-MUG-001", "quantity": 1}]
DEFAULT_CUSTOMER = "customer@example.com"
_FINISHED_BADLY = {OrderStatus.OUT_OF_STOCK, OrderStatus.PAYMENT_FAILED, OrderStatus.CANCELLED}


class EcommerceConfig(CommerceConfig):
    """``spec.config`` of the e-commerce agent."""

    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    tax_rate_bps: int = Field(default=0, ge=0, le=10_000, description="tax in basis points")
    max_lines: int = Field(default=50, ge=1, le=1000)
    max_quantity_per_line: int = Field(default=100, ge=1, le=100_000)


def new_order_id() -> str:
    """A new order's id: ``ord_`` and 20 hex digits, derived from the run and step when
    called inside a workflow step (the same on every attempt), else random."""
    step = current_step()
    return "ord_" + (step.key("order") if step is not None else uuid.uuid4().hex[:20])


def _product(row: dict[str, Any]) -> Product:
    return Product(
        sku=row["sku"],
        name=row["name"],
        price_cents=int(row["price_cents"]),
        cost_cents=int(row["cost_cents"]),
        currency=row["currency"],
        stock=int(row["stock"]),
        active=bool(row["active"]),
    )


def _skus(items: Any) -> list[str] | None:
    if not isinstance(items, list):
        return None
    return [
        item["sku"] for item in items if isinstance(item, dict) and isinstance(item.get("sku"), str)
    ]


class EcommerceAgent(CommerceAgent):
    """Validates, prices and records orders (see the module docstring)."""

    config_model = EcommerceConfig
    operations = {"validate_order": "validate_order"}

    def __init__(self) -> None:
        super().__init__("E-commerce Agent", version="2.0.0")
        self.config = EcommerceConfig()

    @property
    def rules(self) -> OrderRules:
        config: EcommerceConfig = self.config
        return OrderRules(
            currency=config.currency,
            tax_rate_bps=config.tax_rate_bps,
            max_lines=config.max_lines,
            max_quantity_per_line=config.max_quantity_per_line,
        )

    async def validate_order(
        self,
        order_id: str = "",
        items: Any = None,
        customer: str = DEFAULT_CUSTOMER,
        currency: str = "",
    ) -> dict[str, Any]:
        """Validate, price and store an order; see the module docstring."""
        rules = self.rules
        items = DEFAULT_ITEMS if items is None else parse_items(items)
        order_id = order_id.strip() if isinstance(order_id, str) else order_id
        order_id = order_id or new_order_id()
        rows = await self.db(self.store.catalog, _skus(items))
        catalog = {sku: _product(row) for sku, row in rows.items()}
        priced = validate_order(
            str(order_id),
            items,
            customer=customer,
            currency=currency or rules.currency,
            catalog=catalog,
            rules=rules,
        )
        stored, created = await self.db(
            self.store.create_order,
            {
                "id": priced.order_id,
                "customer": priced.customer,
                "currency": priced.currency,
                "subtotal_cents": priced.subtotal_cents,
                "tax_cents": priced.tax_cents,
                "total_cents": priced.total_cents,
                "cost_cents": priced.cost_cents,
                "status": OrderStatus.VALIDATED.value,
            },
            [
                {
                    "sku": line.sku,
                    "name": line.name,
                    "quantity": line.quantity,
                    "unit_price_cents": line.unit_price_cents,
                    "unit_cost_cents": line.unit_cost_cents,
                }
                for line in priced.lines
            ],
            self.clock.now(),
        )
        if not created:
            return _existing(priced, stored)
        return {**priced.to_dict(), "status": OrderStatus.VALIDATED.value, "replayed": False}


def _existing(priced: PricedOrder, stored: dict[str, Any]) -> dict[str, Any]:
    """The stored order when it is the one asked for again; else a clear refusal."""
    same = (
        stored["customer"] == priced.customer
        and stored["currency"] == priced.currency
        and [(line["sku"], line["quantity"]) for line in stored["lines"]]
        == [(line.sku, line.quantity) for line in priced.lines]
    )
    if not same:
        raise OrderInvalid(
            [f"order_id: order {priced.order_id} exists already with other contents"]
        )
    status = OrderStatus(stored["status"])
    if status in _FINISHED_BADLY:
        raise OrderStateError(
            f"order {priced.order_id} is {status.value}; place it again under a new order id"
        )
    return {
        "order_id": stored["id"],
        "customer": stored["customer"],
        "currency": stored["currency"],
        "lines": [
            {
                "sku": line["sku"],
                "name": line["name"],
                "quantity": line["quantity"],
                "unit_price_cents": line["unit_price_cents"],
                "line_total_cents": line["quantity"] * line["unit_price_cents"],
            }
            for line in stored["lines"]
        ],
        "subtotal_cents": stored["subtotal_cents"],
        "tax_cents": stored["tax_cents"],
        "total_cents": stored["total_cents"],
        "total": format_cents(stored["total_cents"], stored["currency"]),
        "status": status.value,
        "replayed": True,
    }
