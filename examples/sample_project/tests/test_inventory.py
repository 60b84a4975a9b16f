"""The sample project's own tests: they pass before and after devskyy fixes it."""

import pytest

from inventory import Inventory, Item
from inventory.config import load_settings
from inventory.report import classify, git_revision, render


def make() -> Inventory:
    inv = Inventory()
    inv.add(Item("A1", "bolt", 10, 25))
    inv.add(Item("B2", "nut", 3, 10))
    inv.add(Item("A1", "bolt", 5, 25))
    return inv


def test_add_merges_quantities():
    assert make().find("A1").quantity == 15


def test_remove_checks_stock():
    inv = make()
    inv.remove("B2", 2)
    assert inv.find("B2").quantity == 1
    with pytest.raises(ValueError, match="only 1 of B2 in stock"):
        inv.remove("B2", 2)
    with pytest.raises(KeyError):
        inv.remove("ZZ", 1)


def test_total_value():
    assert make().total_value_cents() == 15 * 25 + 3 * 10


def test_missing():
    assert make().missing(["A1", "C3", "B2", "D4"]) == ["C3", "D4"]


def test_render():
    assert render(make()) == (
        "A1       bolt                    15\nB2       nut                      3\n"
    )


def test_classify():
    assert classify(0, 5, 0, True, False, False, False) == "backordered"
    assert classify(2, 5, 0, False, False, True, False) == "reorder-soon"
    assert classify(100, 5, 0, False, False, True, True) == "overstock"
    assert classify(10, 5, 0, False, False, False, False) == "ok"


def test_settings(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("currency: USD\nlow_stock: 2\n")
    assert load_settings(path) == {"currency": "USD", "low_stock": 2}


def test_git_revision_is_text():
    assert isinstance(git_revision(), str)
