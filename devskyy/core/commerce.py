"""Pure commerce rules: money in integer cents, order validation, the order life cycle,
idempotency keys and card checks (the ledger's rules are in ``devskyy.core.ledger``).

Nothing here touches the store, the network or the clock: the commerce agents read
the catalog and orders through ``devskyy.adapters.commerce_store`` and pass values in.

Money is always an ``int`` number of minor units (cents) with an ISO 4217 currency code;
floats never carry amounts. Tax is computed in basis points and rounded half up to the
cent, once per order (not per line), so the ledger and the charge agree to the cent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from devskyy.errors import PermanentError

ORDER_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}$")
SKU_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,39}$")
MAX_ORDER_CENTS = 10_000_000_00  # ten million in major units: a typo guard, not a policy


# --------------------------------------------------------------------------- errors


class CommerceError(PermanentError):
    """Base of the commerce failures that no retry will fix."""


class OrderInvalid(CommerceError):
    """The order failed validation; ``problems`` lists every finding."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid order: " + "; ".join(self.problems))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.problems,))


class OutOfStock(CommerceError):
    """Not enough stock of ``sku`` for the order."""

    def __init__(self, sku: str, requested: int, available: int) -> None:
        self.sku = sku
        self.requested = requested
        self.available = available
        super().__init__(f"out of stock: {sku} has {available} left, the order needs {requested}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.sku, self.requested, self.available))


class OrderNotFound(CommerceError):
    """No order has that id."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        super().__init__(f"order {order_id} does not exist")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.order_id,))


class OrderStateError(CommerceError):
    """The order is not in a state that allows the requested step."""


class PaymentDeclined(CommerceError):
    """The gateway declined the charge; ``code`` is the gateway's decline code."""

    def __init__(self, order_id: str, code: str, last4: str) -> None:
        self.order_id = order_id
        self.code = code
        self.last4 = last4
        super().__init__(f"payment for order {order_id} declined: {code} (card ending {last4})")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.order_id, self.code, self.last4))


# --------------------------------------------------------------------------- money


def parse_amount(text: str | int) -> int:
    """``"12.34"`` -> ``1234`` cents, exactly (no float); ints are taken as cents."""
    if isinstance(text, bool):
        raise ValueError("an amount cannot be a boolean")
    if isinstance(text, int):
        return text
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"not an amount: {text!r}") from None
    cents = value * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{text!r} has more than two decimal places")
    return int(cents)


def format_cents(cents: int, currency: str) -> str:
    """``1234, "USD"`` -> ``"12.34 USD"``; negative amounts keep their sign."""
    sign = "-" if cents < 0 else ""
    major, minor = divmod(abs(cents), 100)
    return f"{sign}{major}.{minor:02d} {currency}"


def tax_cents(subtotal_cents: int, rate_bps: int) -> int:
    """Tax on ``subtotal_cents`` at ``rate_bps`` basis points, rounded half up to the cent."""
    if rate_bps < 0:
        raise ValueError("a tax rate cannot be negative")
    exact = Decimal(subtotal_cents) * rate_bps / Decimal(10_000)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --------------------------------------------------------------------------- cards


def luhn_valid(number: str) -> bool:
    """The Luhn checksum every card number carries."""
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def normalize_card(number: str) -> str:
    """Digits only: spaces and dashes, as people type them, are dropped."""
    return re.sub(r"[\s-]", "", number)


def card_brand(number: str) -> str:
    """The card network from the number's prefix (enough for receipts)."""
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    if number.startswith("6011") or number.startswith("65"):
        return "discover"
    return "unknown"


# --------------------------------------------------------------------------- orders


@dataclass(frozen=True)
class Product:
    """A catalog row as the rules see it."""

    sku: str
    name: str
    price_cents: int
    cost_cents: int
    currency: str
    stock: int = 0
    active: bool = True


@dataclass(frozen=True)
class OrderLine:
    """One priced line of an order."""

    sku: str
    name: str
    quantity: int
    unit_price_cents: int
    unit_cost_cents: int

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents

    @property
    def cost_cents(self) -> int:
        return self.quantity * self.unit_cost_cents

    def to_dict(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "name": self.name,
            "quantity": self.quantity,
            "unit_price_cents": self.unit_price_cents,
            "line_total_cents": self.total_cents,
        }


@dataclass(frozen=True)
class PricedOrder:
    """A validated order: lines priced from the catalog, totals in cents."""

    order_id: str
    customer: str
    currency: str
    lines: tuple[OrderLine, ...]
    tax_rate_bps: int = 0

    @property
    def subtotal_cents(self) -> int:
        return sum(line.total_cents for line in self.lines)

    @property
    def tax_cents(self) -> int:
        return tax_cents(self.subtotal_cents, self.tax_rate_bps)

    @property
    def total_cents(self) -> int:
        return self.subtotal_cents + self.tax_cents

    @property
    def cost_cents(self) -> int:
        return sum(line.cost_cents for line in self.lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "customer": self.customer,
            "currency": self.currency,
            "lines": [line.to_dict() for line in self.lines],
            "subtotal_cents": self.subtotal_cents,
            "tax_cents": self.tax_cents,
            "total_cents": self.total_cents,
            "total": format_cents(self.total_cents, self.currency),
        }


@dataclass(frozen=True)
class OrderRules:
    """The limits an order must respect (the e-commerce agent's config)."""

    currency: str = "USD"
    tax_rate_bps: int = 0
    max_lines: int = 50
    max_quantity_per_line: int = 100


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _quantity(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _check_items(
    items: Any, catalog: Mapping[str, Product], rules: OrderRules, problems: list[str]
) -> dict[str, int]:
    wanted: dict[str, int] = {}
    if not isinstance(items, list) or not items:
        problems.append("items: expected a non-empty list of {sku, quantity}")
        return wanted
    if len(items) > rules.max_lines:
        problems.append(f"items: {len(items)} lines, at most {rules.max_lines} allowed")
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where}: expected an object with sku and quantity")
            continue
        unknown = sorted(set(item) - {"sku", "quantity"})
        if unknown:
            problems.append(f"{where}: unknown field(s) {', '.join(unknown)}")
        sku = item.get("sku")
        quantity = _quantity(item.get("quantity", 1))
        if not isinstance(sku, str) or not SKU_PATTERN.match(sku):
            problems.append(f"{where}.sku: {sku!r} is not a valid SKU")
            continue
        product = catalog.get(sku)
        if product is None or not product.active:
            problems.append(f"{where}.sku: unknown product {sku}")
            continue
        if product.currency != rules.currency:
            problems.append(
                f"{where}.sku: {sku} is priced in {product.currency}, not {rules.currency}"
            )
        if quantity is None or quantity < 1:
            problems.append(f"{where}.quantity: {item.get('quantity')!r} is not a positive integer")
            continue
        wanted[sku] = wanted.get(sku, 0) + quantity
        if wanted[sku] > rules.max_quantity_per_line:
            problems.append(
                f"{where}.quantity: {wanted[sku]} of {sku}, at most "
                f"{rules.max_quantity_per_line} allowed"
            )
    return wanted


def parse_items(value: Any) -> Any:
    """Order items as given: a list as is; text as JSON (``[{"sku": …}]``) or the
    command-line shorthand ``SKU[:QTY],SKU[:QTY]`` (``DSK-MUG-001:2,DSK-TEE-001``).

    Anything else is returned unchanged for ``validate_order`` to report.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith(("[", "{")):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            return value
        return [parsed] if isinstance(parsed, dict) else parsed
    items: list[dict[str, Any]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        sku, _, quantity = part.partition(":")
        items.append({"sku": sku.strip(), "quantity": quantity.strip() or 1})
    return items


def parse_catalog(data: Any) -> list[Product]:
    """Products from a catalog document ``{"currency": …, "products": [{sku, name,
    price_cents, cost_cents, stock}, …]}``; ``ValueError`` names every bad entry."""
    if not isinstance(data, Mapping) or not isinstance(data.get("products"), list):
        raise ValueError("a catalog is an object with a 'products' list")
    default_currency = data.get("currency", "USD")
    problems: list[str] = []
    found: list[Product] = []
    for index, item in enumerate(data["products"]):
        try:
            product = Product(
                sku=str(item["sku"]),
                name=str(item["name"]),
                price_cents=int(item["price_cents"]),
                cost_cents=int(item["cost_cents"]),
                currency=str(item.get("currency", default_currency)),
                stock=int(item.get("stock", 0)),
                active=bool(item.get("active", True)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"products[{index}]: {exc!r}")
            continue
        if not SKU_PATTERN.match(product.sku):
            problems.append(f"products[{index}].sku: {product.sku!r} is not a valid SKU")
        if not CURRENCY_PATTERN.match(product.currency):
            problems.append(f"products[{index}].currency: {product.currency!r} is not ISO 4217")
        if min(product.price_cents, product.cost_cents, product.stock) < 0:
            problems.append(f"products[{index}]: price, cost and stock cannot be negative")
        found.append(product)
    skus = [p.sku for p in found]
    problems.extend(
        f"duplicate SKU {sku}" for sku in sorted({s for s in skus if skus.count(s) > 1})
    )
    if problems:
        raise ValueError("invalid catalog: " + "; ".join(problems))
    return found


def validate_order(
    order_id: str,
    items: Any,
    *,
    customer: str,
    currency: str,
    catalog: Mapping[str, Product],
    rules: OrderRules,
) -> PricedOrder:
    """Check an order against the catalog and price it; ``OrderInvalid`` lists every problem.

    Repeated SKUs are merged into one line. Stock is *not* checked here: only a
    reservation can say whether stock is there, atomically.
    """
    problems: list[str] = []
    if not ORDER_ID_PATTERN.match(order_id):
        problems.append(f"order_id: {order_id!r} must be 1-64 letters, digits, '-' or '_'")
    if not _EMAIL.match(customer):
        problems.append(f"customer: {customer!r} is not an e-mail address")
    if currency != rules.currency:
        problems.append(
            f"currency: {currency!r} is not accepted; this shop sells in {rules.currency}"
        )
    wanted = _check_items(items, catalog, rules, problems)
    if problems:
        raise OrderInvalid(problems)
    lines = tuple(
        OrderLine(
            sku=sku,
            name=catalog[sku].name,
            quantity=quantity,
            unit_price_cents=catalog[sku].price_cents,
            unit_cost_cents=catalog[sku].cost_cents,
        )
        for sku, quantity in sorted(wanted.items())
    )
    order = PricedOrder(order_id, customer, currency, lines, rules.tax_rate_bps)
    if order.total_cents > MAX_ORDER_CENTS:
        raise OrderInvalid(
            [f"total {format_cents(order.total_cents, currency)} is above the limit"]
        )
    return order


# --------------------------------------------------------------------------- life cycle


class OrderStatus(StrEnum):
    """Where an order is."""

    VALIDATED = "validated"
    RESERVED = "reserved"
    OUT_OF_STOCK = "out_of_stock"
    PAID = "paid"
    PAYMENT_FAILED = "payment_failed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.VALIDATED: frozenset(
        {OrderStatus.RESERVED, OrderStatus.OUT_OF_STOCK, OrderStatus.CANCELLED}
    ),
    OrderStatus.RESERVED: frozenset(
        {OrderStatus.PAID, OrderStatus.PAYMENT_FAILED, OrderStatus.CANCELLED}
    ),
    OrderStatus.PAYMENT_FAILED: frozenset({OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.COMPLETED}),
    OrderStatus.OUT_OF_STOCK: frozenset(),
    OrderStatus.COMPLETED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    """True when an order may move from ``current`` to ``target``."""
    return target in _TRANSITIONS[current]


def require_transition(order_id: str, current: OrderStatus, target: OrderStatus) -> None:
    """Raise ``OrderStateError`` unless ``current`` -> ``target`` is allowed."""
    if not can_transition(current, target):
        raise OrderStateError(
            f"order {order_id} is {current.value}; it cannot become {target.value}"
        )


def payment_idempotency_key(order_id: str) -> str:
    """The idempotency key of an order's payment: the same for every retry of it."""
    return f"order-{order_id}-payment"
