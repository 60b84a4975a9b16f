"""The financial agent: ``process_payment`` through a gateway, ``record_transaction`` in the
double-entry ledger.

``process_payment(order_id, payment_method=…)`` charges the stored total of a reserved
order (never an amount from the caller) under the idempotency key derived from the
order id, and only from it: one key per order, so a retried step, a resumed run, a
second run for the same order or two calls at once charge it once. A
decline is stored (``payment_failed``) and raised as ``PaymentDeclined``, which no retry
repeats; a gateway timeout is a ``GatewayTimeout`` (temporary), and the retry with the
same key learns whether the first attempt charged. Only the brand and last four digits
of a card are kept.

``record_transaction(order_id)`` books the paid order once (unique reference
``sale:<order_id>``): Dr gateway clearing, Cr sales revenue and sales tax payable, and
Dr cost of goods sold, Cr inventory. Lines sum to zero, checked before writing; the
order's reservations become ``committed`` and the order ``completed`` in the same
transaction.

The gateway comes from ``config.gateway``; ``sandbox`` (the default and, offline, the
only one) is ``devskyy.agents.commerce.gateway.SandboxGateway``. Code embedding the
agent may set ``agent.gateway`` to any ``PaymentGateway`` after ``initialize()``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from devskyy.adapters import commerce_payments as money
from devskyy.agents.commerce.common import CommerceAgent, CommerceConfig
from devskyy.agents.commerce.gateway import (
    DEFAULT_PAYMENT_METHOD,
    ChargeRequest,
    PaymentGateway,
    SandboxGateway,
)
from devskyy.core.commerce import (
    OrderNotFound,
    OrderStateError,
    OrderStatus,
    PaymentDeclined,
    format_cents,
    payment_idempotency_key,
)
from devskyy.core.ledger import sale_entry


class FinancialConfig(CommerceConfig):
    """``spec.config`` of the financial agent."""

    gateway: Literal["sandbox"] = "sandbox"
    gateway_timeout_seconds: float = Field(default=10.0, gt=0, le=600)


def _payment_view(row: dict[str, Any], *, replayed: bool) -> dict[str, Any]:
    return {
        "order_id": row["order_id"],
        "payment_id": row["id"],
        "status": row["status"],
        "charge_id": row["charge_id"],
        "amount_cents": row["amount_cents"],
        "currency": row["currency"],
        "amount": format_cents(row["amount_cents"], row["currency"]),
        "card": f"{row['card_brand']} ending {row['card_last4']}",
        "gateway": row["gateway"],
        "idempotency_key": row["idempotency_key"],
        "replayed": replayed,
    }


class FinancialAgent(CommerceAgent):
    """Charges orders and books them (see the module docstring)."""

    config_model = FinancialConfig
    operations = {
        "process_payment": "process_payment",
        "record_transaction": "record_transaction",
    }

    def __init__(self) -> None:
        super().__init__("Financial Agent", version="2.0.0")
        self.config = FinancialConfig()
        self.gateway: PaymentGateway | None = None

    async def initialize(self) -> bool:
        if not await super().initialize():
            return False
        if self.gateway is None:
            config: FinancialConfig = self.config
            self.gateway = SandboxGateway(self.engine, self.clock, config.gateway_timeout_seconds)
        return True

    async def process_payment(
        self,
        order_id: str,
        payment_method: str = DEFAULT_PAYMENT_METHOD,
    ) -> dict[str, Any]:
        """Charge the order's total once; see the module docstring."""
        if self.gateway is None:
            raise RuntimeError(f"{self.agent_name} is not initialized; call initialize() first")
        key = payment_idempotency_key(order_id)
        known = await self.db(money.payment_by_key, self.engine, key)
        if known is not None:
            return self._settled(known, replayed=True)
        order = await self.db(self.store.get_order, order_id)
        if order is None:
            raise OrderNotFound(order_id)
        if order["status"] != OrderStatus.RESERVED.value:
            raise OrderStateError(
                f"order {order_id} is {order['status']}; only a reserved order can be charged"
            )
        result = await self.gateway.charge(
            ChargeRequest(
                idempotency_key=key,
                amount_cents=int(order["total_cents"]),
                currency=order["currency"],
                payment_method=payment_method,
                description=f"order {order_id}",
            )
        )
        row, created = await self.db(
            money.record_payment,
            self.engine,
            {
                "order_id": order_id,
                "idempotency_key": key,
                "gateway": self.gateway.name,
                "charge_id": result.charge_id,
                "amount_cents": result.amount_cents,
                "currency": result.currency,
                "status": result.status,
                "decline_code": result.decline_code,
                "card_brand": result.card_brand,
                "card_last4": result.card_last4,
            },
            allowed_from=[OrderStatus.RESERVED.value],
            status=(OrderStatus.PAID if result.succeeded else OrderStatus.PAYMENT_FAILED).value,
            now=self.clock.now(),
        )
        return self._settled(row, replayed=result.replayed or not created)

    @staticmethod
    def _settled(row: dict[str, Any], *, replayed: bool) -> dict[str, Any]:
        if row["status"] != "succeeded":
            raise PaymentDeclined(
                row["order_id"], row["decline_code"] or "declined", row["card_last4"]
            )
        return _payment_view(row, replayed=replayed)

    async def record_transaction(self, order_id: str) -> dict[str, Any]:
        """Book the paid order in the ledger once; see the module docstring."""
        order = await self.db(self.store.get_order, order_id)
        if order is None:
            raise OrderNotFound(order_id)
        payment = await self.db(money.succeeded_payment, self.engine, order_id)
        if payment is None:
            raise OrderStateError(f"order {order_id} has no successful payment to record")
        draft = sale_entry(
            order_id,
            order["currency"],
            subtotal_cents=int(order["subtotal_cents"]),
            tax_cents=int(order["tax_cents"]),
            cost_cents=int(order["cost_cents"]),
            charge_id=payment["charge_id"] or "",
        )
        entry, created = await self.db(
            money.post_sale,
            self.engine,
            {
                "reference": draft.reference,
                "order_id": order_id,
                "description": draft.description,
                "currency": draft.currency,
            },
            [
                {"account": line.account, "amount_cents": line.amount_cents, "memo": line.memo}
                for line in draft.lines
            ],
            allowed_from=[OrderStatus.PAID.value],
            status=OrderStatus.COMPLETED.value,
            now=self.clock.now(),
        )
        return {
            "order_id": order_id,
            "status": OrderStatus.COMPLETED.value,
            "entry_id": entry["id"],
            "reference": entry["reference"],
            "lines": entry["lines"],
            "balanced": sum(line["amount_cents"] for line in entry["lines"]) == 0,
            "replayed": not created,
        }
