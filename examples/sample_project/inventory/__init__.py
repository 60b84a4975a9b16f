"""A tiny stock-keeping library."""

from inventory.store import Inventory, Item

__all__ = ["Inventory", "Item"]
