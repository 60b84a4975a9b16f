"""Items and the inventory that holds them."""

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional


@dataclass
class Item:
    sku: str
    name: str
    quantity: int = 0
    price_cents: int = 0
    tags: List[str] = field(default_factory=list)


class Inventory:
    def __init__(self) -> None:
        self.items: Dict[str, Item] = {}

    def add(self, item: Item) -> None:
        if item.sku in self.items.keys():
            self.items[item.sku].quantity += item.quantity
        else:
            self.items[item.sku] = item

    def remove(self, sku: str, quantity: int) -> None:
        item = self.find(sku)
        if item == None:
            raise KeyError(sku)
        if quantity > item.quantity:
            raise ValueError(f"only {item.quantity} of {sku} in stock")
        item.quantity -= quantity

    def find(self, sku: str) -> Optional[Item]:
        return self.items.get(sku)

    def total_value_cents(self) -> int:
        total = 0
        for item in self.items.values():
            total = total + item.quantity * item.price_cents
        return total

    def missing(self, wanted: List[str]) -> List[str]:
        present = [sku for sku in self.items]
        result = []
        for sku in wanted:
            if sku not in present:
                result.append(sku)
        return result
