"""Kill ``devskyy run ecommerce_order`` right after each commerce side effect, resume it, and
check that nothing happened twice: one order (no orphan), one charge at the gateway, one
payment, one ledger entry, the stock taken once (issue 19.7 and 19.9).

The order id of a new order is derived from the run and the step, so the re-run of an
interrupted step finds what its first attempt stored instead of writing it again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_failpoints import devskyy, killed, ok

from devskyy.adapters import commerce_payments as money
from devskyy.adapters import commerce_store as store
from devskyy.adapters.db import open_engine
from devskyy.adapters.run_store import SqlRunStore
from devskyy.model.runs import RunStatus

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SKU = "DSK-MUG-001"


def _counts(state_url: str) -> dict[str, object]:
    engine = open_engine(state_url)
    try:
        return {
            "orders": store.count(engine, store.orders),
            "charges": store.count(engine, money.sandbox_charges),
            "payments": store.count(engine, money.payments),
            "entries": store.count(engine, money.journal_entries),
            "reservations": store.count(engine, store.reservations),
            "stock": store.stock(engine, SKU),
        }
    finally:
        engine.dispose()


@pytest.fixture
def shop(tmp_path: Path, state_url: str) -> dict[str, object]:
    """The shipped manifests applied and one order run to the end: the expected deltas."""
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    ok(devskyy(state_url, tmp_path, "apply", str(tmp_path / "manifests")))
    ok(devskyy(state_url, tmp_path, "run", "ecommerce_order"))
    return _counts(state_url)


@pytest.mark.parametrize(
    "fail", ["order.stored", "gateway.charged", "payment.recorded", "ledger.recorded"]
)
def test_a_kill_after_a_commerce_side_effect_resumes_without_repeating_it(
    tmp_path: Path, state_url: str, shop: dict[str, object], fail: str
) -> None:
    killed(devskyy(state_url, tmp_path, "run", "ecommerce_order", fail=fail))
    engine = open_engine(state_url)
    try:
        runs = SqlRunStore(engine).list_runs(workflow="ecommerce_order")
    finally:
        engine.dispose()
    interrupted = runs[0]
    assert interrupted.status is RunStatus.RUNNING
    ok(devskyy(state_url, tmp_path, "runs", "resume", interrupted.id))
    after = _counts(state_url)
    before_stock = shop["stock"]
    assert isinstance(before_stock, int)
    # Exactly one more of each, as a run that was never killed: nothing orphaned or doubled.
    assert after == {
        "orders": 2,
        "charges": 2,
        "payments": 2,
        "entries": 2,
        "reservations": 2,
        "stock": before_stock - 1,
    }
    engine = open_engine(state_url)
    try:
        run = SqlRunStore(engine).get(interrupted.id)
    finally:
        engine.dispose()
    assert run.status is RunStatus.SUCCEEDED
