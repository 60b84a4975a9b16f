"""``devskyy run ecommerce_order`` from a fresh state, with no ``-p`` at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from devskyy.adapters import commerce_payments as money
from devskyy.adapters import commerce_store as store
from devskyy.adapters.db import open_engine
from devskyy.cli import main


def run_json(runner: CliRunner, *args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(main, ["run", "ecommerce_order", "-o", "json", *args])
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.slow
def test_run_ecommerce_order_twice_from_fresh_state_then_a_declined_card(
    tmp_path: Path, repo_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    applied = runner.invoke(main, ["apply", str(repo_root / "manifests")])
    assert applied.exit_code == 0, applied.output

    first_code, first = run_json(runner)
    second_code, second = run_json(runner)
    assert (first_code, second_code) == (0, 0)
    for run in (first, second):
        assert run["status"] == "succeeded"
        assert {name: step["status"] for name, step in run["steps"].items()} == {
            "validate": "succeeded",
            "reserve": "succeeded",
            "payment": "succeeded",
            "record": "succeeded",
            "release": "skipped",
        }
    first_order = first["steps"]["validate"]["output"]["order_id"]
    second_order = second["steps"]["validate"]["output"]["order_id"]
    assert first_order != second_order  # each run is a new order

    declined_code, declined = run_json(runner, "-p", "payment_method=pm_card_chargeDeclined")
    assert declined_code == 1
    assert declined["status"] == "failed"
    assert declined["steps"]["payment"]["error_type"] == "PaymentDeclined"
    assert declined["steps"]["release"]["status"] == "succeeded"
    assert declined["steps"]["record"]["status"] == "skipped"

    engine = open_engine(f"sqlite:///{tmp_path / '.devskyy' / 'state.db'}")
    try:
        assert store.stock(engine, "DSK-MUG-001") == 998  # the declined order's unit is back
        assert store.count(engine, store.orders, status="completed") == 2
        assert store.count(engine, store.orders, status="cancelled") == 1
        assert store.count(engine, store.journal_entries) == 2
        assert {e["order_id"] for e in money.ledger_lines(engine)} == {first_order, second_order}
    finally:
        engine.dispose()
