"""Helpers shared by the commerce tests: a shop of the three agents on one store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from devskyy.adapters.clock import FakeClock
from devskyy.agents.commerce import EcommerceAgent, FinancialAgent, InventoryAgent
from devskyy.runtime.agent import AgentContext


@dataclass
class Shop:
    """The e-commerce, inventory and financial agents bound to one store and clock."""

    engine: Engine
    clock: FakeClock
    ecommerce: EcommerceAgent
    inventory: InventoryAgent
    financial: FinancialAgent

    async def order(self, **kwargs: Any) -> dict[str, Any]:
        """Validate, reserve, pay and record one order directly (no workflow engine)."""
        payment_method = kwargs.pop("payment_method", "pm_card_visa")
        order = await self.ecommerce.validate_order(**kwargs)
        await self.inventory.reserve_inventory(order["order_id"])
        await self.financial.process_payment(order["order_id"], payment_method)
        return await self.financial.record_transaction(order["order_id"])


async def open_shop(
    engine: Engine, clock: FakeClock, configs: dict[str, dict[str, Any]] | None = None
) -> Shop:
    configs = configs or {}
    agents: list[Any] = []
    for name, cls in (
        ("ecommerce", EcommerceAgent),
        ("inventory", InventoryAgent),
        ("financial", FinancialAgent),
    ):
        agent = cls()
        agent.bind(
            AgentContext(name=name, config=configs.get(name, {}), engine=engine, clock=clock)
        )
        assert await agent.initialize(), agent.last_error
        agents.append(agent)
    return Shop(engine, clock, *agents)
