"""A new order's id is keyed by run and step (issue 19.7): the same step's attempts, and its
re-run after a crash, find the order the first attempt stored; other steps and runs place
their own; outside a workflow step the id stays random."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from commerce_fixtures import Shop, open_shop
from sqlalchemy import Engine

from devskyy.adapters import commerce_store as store
from devskyy.adapters.clock import FakeClock
from devskyy.runtime.step_context import StepRef, current_step, in_step


@pytest.fixture
def shop(engine: Engine, clock: FakeClock) -> Shop:
    return asyncio.run(open_shop(engine, clock))


def _validate(shop: Shop, ref: StepRef | None) -> dict[str, Any]:
    async def call() -> dict[str, Any]:
        if ref is None:
            return await shop.ecommerce.validate_order()
        with in_step(ref.run_id, ref.step):
            return await shop.ecommerce.validate_order()

    return asyncio.run(call())


def test_a_step_rerun_reuses_its_order_and_other_steps_place_their_own(
    shop: Shop, engine: Engine
) -> None:
    first = _validate(shop, StepRef("run1", "validate"))
    again = _validate(shop, StepRef("run1", "validate"))  # the re-run after a crash
    assert first["order_id"] == "ord_" + StepRef("run1", "validate").key("order")
    assert (again["order_id"], again["replayed"], first["replayed"]) == (
        first["order_id"],
        True,
        False,
    )
    other_step = _validate(shop, StepRef("run1", "validate_again"))
    other_run = _validate(shop, StepRef("run2", "validate"))
    ids = {first["order_id"], other_step["order_id"], other_run["order_id"]}
    assert len(ids) == 3
    assert store.count(engine, store.orders) == 3  # no orphan: the re-run stored nothing


def test_outside_a_step_each_call_is_a_new_order(shop: Shop, engine: Engine) -> None:
    assert current_step() is None
    a, b = _validate(shop, None), _validate(shop, None)
    assert a["order_id"] != b["order_id"]
    assert store.count(engine, store.orders) == 2


def test_the_step_context_is_scoped_and_keys_are_stable() -> None:
    with in_step("r", "s") as ref:
        assert current_step() == ref
        with in_step("r", "t"):
            assert current_step() == StepRef("r", "t")
        assert current_step() == ref
    assert current_step() is None
    assert StepRef("r", "s").key("order") == StepRef("r", "s").key("order")
    assert StepRef("r", "s").key("order") != StepRef("r", "s").key("backup")
    assert len(StepRef("r", "s").key("order")) == 20
