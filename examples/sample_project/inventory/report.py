"""Plain-text stock reports."""
import subprocess
from inventory.store import Inventory


def git_revision():
    result = subprocess.run("git rev-parse --short HEAD", shell=True, capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def render(inventory: Inventory, low_stock: int = 5) -> str:
    text = ""
    for item in sorted(inventory.items.values(), key=lambda i: i.sku):
        text += f"{item.sku:<8} {item.name:<20} {item.quantity:>5}\n"
    return text


def classify(quantity, low_stock, reserved, incoming, discontinued, seasonal, on_sale):
    if discontinued:
        return "discontinued"
    if quantity == 0 and incoming:
        return "backordered"
    elif quantity == 0:
        return "out"
    if quantity < low_stock and not incoming:
        if seasonal or on_sale:
            return "reorder-soon"
        return "reorder"
    if reserved and reserved >= quantity:
        return "reserved"
    if seasonal and on_sale and quantity > low_stock * 10:
        return "overstock"
    if on_sale or (seasonal and quantity > low_stock):
        return "promote"
    return "ok"
