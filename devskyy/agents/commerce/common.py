"""What the three commerce agents share: the store, first-use seeding, capability dispatch.

Each commerce agent works on the devskyy store it is bound to (``AgentContext.engine``;
unbound, it opens the default ``.devskyy/state.db`` under its ``state_dir``). Catalog,
orders and stock go through the ``CommerceStore`` Protocol (``adapters/commerce_twin``):
in production ``SqlCommerceStore`` over that engine; ``use_store`` hands an agent another
one, such as the in-memory twin ``MemoryCommerceStore`` in tests (payments and the ledger
are SQL only, through ``adapters/commerce_payments`` on the engine). On ``initialize()``
it seeds the shipped catalog (``devskyy/data/catalog.json``) and the chart of accounts,
inserting only what is missing, so a fresh state works at once and existing stock is
never reset.

Store calls are blocking SQLAlchemy calls; they run in worker threads
(``asyncio.to_thread``) so that concurrent steps really are concurrent and the event
loop is never blocked.

An agent with several capabilities picks one from the ``capability`` input, falling
back to its first one (the forward action: ``reserve_inventory``, ``process_payment``).
The workflow engine does not pass a step's ``capability:`` field to the agent, so a
step for any other action names it in its input (``capability: release_inventory``),
as ``manifests/workflows/ecommerce_order.yaml`` does.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any, ClassVar, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from devskyy.adapters.commerce_twin import CommerceStore, SqlCommerceStore
from devskyy.adapters.db import open_engine
from devskyy.adapters.engine import Engine
from devskyy.core.commerce import Product, parse_catalog
from devskyy.core.ledger import CHART_OF_ACCOUNTS
from devskyy.core.tasks import AgentInputs, Consumes
from devskyy.errors import MissingInput
from devskyy.runtime.agent import AgentStatus, BaseAgent

P = ParamSpec("P")
T = TypeVar("T")


class CommerceConfig(BaseModel):
    """Base of the agents' ``spec.config`` models: camelCase keys, unknown keys refused."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, frozen=True
    )


def seed_catalog() -> list[Product]:
    """The catalog shipped with devskyy (package data ``devskyy/data/catalog.json``)."""
    text = resources.files("devskyy").joinpath("data/catalog.json").read_text(encoding="utf-8")
    return parse_catalog(json.loads(text))


def seed_store(engine: Engine) -> dict[str, int]:
    """Insert the shipped catalog and the chart of accounts where missing (idempotent)."""
    return seed_into(SqlCommerceStore(engine))


def seed_into(target: CommerceStore) -> dict[str, int]:
    """``seed_store`` into any commerce store (the SQL one, the in-memory twin)."""
    return target.seed(*seed_rows())


def seed_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The seed catalog's product rows and the chart of accounts' rows, as ``seed`` takes them."""
    products = [
        {
            "sku": p.sku,
            "name": p.name,
            "price_cents": p.price_cents,
            "cost_cents": p.cost_cents,
            "currency": p.currency,
            "stock": p.stock,
            "active": p.active,
        }
        for p in seed_catalog()
    ]
    chart = [{"code": a.code, "name": a.name, "type": a.type.value} for a in CHART_OF_ACCOUNTS]
    return products, chart


class CommerceAgent(BaseAgent):
    """Base of the e-commerce, inventory and financial agents."""

    #: capability name -> name of the async method that implements it
    operations: ClassVar[dict[str, str]] = {}

    def __init__(self, agent_name: str, version: str = "1.0.0") -> None:
        super().__init__(agent_name, version)
        self._engine: Engine | None = None
        self._owns_engine = False
        self._store: CommerceStore | None = None
        self._given_store: CommerceStore | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError(f"{self.agent_name} is not initialized; call initialize() first")
        return self._engine

    @property
    def store(self) -> CommerceStore:
        """Catalog, orders and stock (the SQL store of ``engine``, unless ``use_store``)."""
        if self._store is None:
            raise RuntimeError(f"{self.agent_name} is not initialized; call initialize() first")
        return self._store

    def use_store(self, store: CommerceStore) -> None:
        """Work on ``store`` for catalog, orders and stock (call before ``initialize``).

        With no bound engine the agent then opens none: an agent that needs payments or
        the ledger (financial, gateway) still needs ``AgentContext.engine``.
        """
        self._given_store = store

    async def initialize(self) -> bool:
        """Connect to the store and seed it; False (status FAILED) when that fails."""
        try:
            if self.context.engine is not None:
                self._engine = self.context.engine
            elif self._given_store is None:
                url = f"sqlite:///{(self.context.state_dir / 'state.db').absolute()}"
                self._engine = await asyncio.to_thread(open_engine, url)
                self._owns_engine = True
            if self._given_store is not None:
                self._store = self._given_store
            else:
                assert self._engine is not None  # bound or opened just above
                self._store = SqlCommerceStore(self._engine)
            await asyncio.to_thread(seed_into, self._store)
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.status = AgentStatus.FAILED
            return False
        self.status = AgentStatus.HEALTHY
        return True

    async def shutdown(self) -> None:
        if self._owns_engine and self._engine is not None:
            self._engine.dispose()
        self._engine = None
        self._store = None

    async def db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking store call in a worker thread."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def headline(self, result: dict[str, Any]) -> str | None:
        """``order ord_… validated: 14.00 USD``, ``… reserved: DSK-MUG-001 x1`` and so on."""
        parts = [f"order {result.get('order_id')} {result.get('status')}"]
        if "total" in result:
            parts.append(f": {result['total']}")
        elif "amount" in result:
            parts.append(f": {result['amount']} ({result.get('card', 'card')})")
        elif result.get("reservations"):
            held = ", ".join(f"{r['sku']} x{r['quantity']}" for r in result["reservations"])
            parts.append(f": {held}")
        elif "reference" in result:
            parts.append(f": ledger entry {result.get('entry_id')} ({result['reference']})")
        if result.get("replayed"):
            parts.append(" (replayed)")
        return "".join(parts)

    @classmethod
    def inputs(cls, capability: str) -> AgentInputs:
        """The parameters of the method behind ``capability``; the order comes upstream.

        ``execute_task`` hands an operation that takes ``order_id`` the order id of the
        validated order (the e-commerce agent it depends on).
        """
        method_name = cls.operations.get(capability)
        if method_name is None:
            return AgentInputs(frozenset(), ())
        names = frozenset(inspect.signature(getattr(cls, method_name)).parameters) - {"self"}
        consumes = (Consumes("order_id", "validate_order", "order_id"),)
        return AgentInputs(names, consumes if "order_id" in names else ())

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        """Run the capability named by ``capability`` (default: the first one)."""
        capability = kwargs.pop("capability", None) or next(iter(type(self).operations))
        method_name = type(self).operations.get(str(capability))
        if method_name is None:
            known = ", ".join(sorted(type(self).operations))
            raise MissingInput(f"{self.name} has no capability {capability!r} (it has: {known})")
        method: Callable[..., Awaitable[dict[str, Any]]] = getattr(self, method_name)
        signature = inspect.signature(method)
        try:
            signature.bind(**kwargs)
        except TypeError as exc:
            # Wrong or missing inputs are the caller's mistake: say which, and never retry.
            raise MissingInput(f"{capability}: {exc}") from None
        return await method(**kwargs)
