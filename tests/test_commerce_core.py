"""The pure commerce rules: money, cards, order validation, life cycle, ledger entries."""

from __future__ import annotations

import pickle

import pytest

from devskyy.core import commerce as c
from devskyy.errors import PermanentError

CATALOG = {
    "DSK-MUG-001": c.Product("DSK-MUG-001", "Mug", 1400, 520, "USD", 10),
    "DSK-TEE-001": c.Product("DSK-TEE-001", "Tee", 2500, 900, "USD", 5),
    "DSK-OLD-001": c.Product("DSK-OLD-001", "Retired", 100, 50, "USD", 5, active=False),
    "DSK-EUR-001": c.Product("DSK-EUR-001", "Euro thing", 100, 50, "EUR", 5),
}
RULES = c.OrderRules(currency="USD", tax_rate_bps=0, max_lines=3, max_quantity_per_line=5)


def validate(items: object, **kw: object) -> c.PricedOrder:
    args: dict[str, object] = {
        "customer": "a@example.com",
        "currency": "USD",
        "catalog": CATALOG,
        "rules": RULES,
    }
    args.update(kw)
    order_id = str(args.pop("order_id", "ord_1"))
    return c.validate_order(order_id, items, **args)  # type: ignore[arg-type]


# -- money --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cents"), [("12.34", 1234), ("0.1", 10), ("5", 500), (" 7.00 ", 700), (250, 250)]
)
def test_parse_amount_is_exact(text: str | int, cents: int) -> None:
    assert c.parse_amount(text) == cents


def test_parse_amount_refuses_fractions_of_a_cent_and_garbage() -> None:
    with pytest.raises(ValueError, match=r"'1\.005' has more than two decimal places"):
        c.parse_amount("1.005")
    with pytest.raises(ValueError, match="not an amount: 'ten'"):
        c.parse_amount("ten")
    with pytest.raises(ValueError, match="boolean"):
        c.parse_amount(True)


def test_format_cents() -> None:
    assert c.format_cents(1234, "USD") == "12.34 USD"
    assert c.format_cents(5, "EUR") == "0.05 EUR"
    assert c.format_cents(-1999, "USD") == "-19.99 USD"


@pytest.mark.parametrize(
    ("subtotal", "bps", "tax"),
    [(1000, 825, 83), (1000, 0, 0), (200, 25, 1), (100, 50, 1), (99, 50, 0), (1999, 1000, 200)],
)
def test_tax_rounds_half_up_to_the_cent(subtotal: int, bps: int, tax: int) -> None:
    # 1000 * 8.25 % = 82.5 -> 83; 200 * 0.25 % = 0.5 -> 1; 99 * 0.5 % = 0.495 -> 0
    assert c.tax_cents(subtotal, bps) == tax


def test_negative_tax_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        c.tax_cents(100, -1)


# -- cards --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number", ["4242424242424242", "5555555555554444", "4000000000000002", "4000000000000507"]
)
def test_luhn_accepts_test_cards(number: str) -> None:
    assert c.luhn_valid(number)


@pytest.mark.parametrize("number", ["4242424242424241", "1234", "42424242424242a2", ""])
def test_luhn_refuses_bad_numbers(number: str) -> None:
    assert not c.luhn_valid(number)


def test_card_helpers() -> None:
    assert c.normalize_card("4242 4242-4242 4242") == "4242424242424242"
    assert c.card_brand("4242424242424242") == "visa"
    assert c.card_brand("5555555555554444") == "mastercard"
    assert c.card_brand("2221000000000009") == "mastercard"
    assert c.card_brand("378282246310005") == "amex"
    assert c.card_brand("6011111111111117") == "discover"
    assert c.card_brand("9999999999999995") == "unknown"


# -- orders -------------------------------------------------------------------------


def test_a_valid_order_is_priced_in_cents_and_repeated_skus_merge() -> None:
    order = validate(
        [
            {"sku": "DSK-TEE-001", "quantity": 1},
            {"sku": "DSK-MUG-001", "quantity": 2},
            {"sku": "DSK-TEE-001", "quantity": "2"},
        ],
        rules=c.OrderRules(tax_rate_bps=825),
    )
    assert [(line.sku, line.quantity) for line in order.lines] == [
        ("DSK-MUG-001", 2),
        ("DSK-TEE-001", 3),
    ]
    assert order.subtotal_cents == 2 * 1400 + 3 * 2500 == 10300
    assert order.tax_cents == 850  # 10300 * 8.25 % = 849.75
    assert order.total_cents == 11150
    assert order.cost_cents == 2 * 520 + 3 * 900
    assert order.to_dict()["total"] == "111.50 USD"
    assert order.to_dict()["lines"][0] == {
        "sku": "DSK-MUG-001",
        "name": "Mug",
        "quantity": 2,
        "unit_price_cents": 1400,
        "line_total_cents": 2800,
    }


def test_quantity_defaults_to_one() -> None:
    assert validate([{"sku": "DSK-MUG-001"}]).lines[0].quantity == 1


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(c.OrderInvalid) as caught:
        validate(
            [
                {"sku": "DSK-NOPE-001", "quantity": 1},
                {"sku": "DSK-MUG-001", "quantity": 0},
                {"sku": "DSK-OLD-001", "quantity": 1},
                {"sku": "DSK-EUR-001", "quantity": 1},
                "DSK-MUG-001",
                {"sku": "lower", "qty": 1},
            ],
            order_id="bad id!",
            customer="nobody",
            currency="GBP",
        )
    assert caught.value.problems == [
        "order_id: 'bad id!' must be 1-64 letters, digits, '-' or '_'",
        "customer: 'nobody' is not an e-mail address",
        "currency: 'GBP' is not accepted; this shop sells in USD",
        "items: 6 lines, at most 3 allowed",
        "items[0].sku: unknown product DSK-NOPE-001",
        "items[1].quantity: 0 is not a positive integer",
        "items[2].sku: unknown product DSK-OLD-001",
        "items[3].sku: DSK-EUR-001 is priced in EUR, not USD",
        "items[4]: expected an object with sku and quantity",
        "items[5]: unknown field(s) qty",
        "items[5].sku: 'lower' is not a valid SKU",
    ]
    assert str(caught.value).startswith("invalid order: order_id: 'bad id!' must be")
    assert isinstance(caught.value, PermanentError)


@pytest.mark.parametrize("items", [[], None, "x", {"sku": "DSK-MUG-001"}])
def test_items_must_be_a_non_empty_list(items: object) -> None:
    with pytest.raises(
        c.OrderInvalid, match=r"items: expected a non-empty list of \{sku, quantity\}"
    ):
        validate(items)


def test_quantity_limit_counts_merged_lines() -> None:
    with pytest.raises(c.OrderInvalid) as caught:
        validate([{"sku": "DSK-MUG-001", "quantity": 3}, {"sku": "DSK-MUG-001", "quantity": 3}])
    assert caught.value.problems == ["items[1].quantity: 6 of DSK-MUG-001, at most 5 allowed"]


@pytest.mark.parametrize("quantity", [True, 1.5, -2, "two"])
def test_odd_quantities_are_refused(quantity: object) -> None:
    with pytest.raises(c.OrderInvalid, match=r"items\[0\]\.quantity: .* is not a positive integer"):
        validate([{"sku": "DSK-MUG-001", "quantity": quantity}])


def test_parse_items_accepts_json_and_the_command_line_shorthand() -> None:
    items = [{"sku": "DSK-MUG-001", "quantity": 2}]
    assert c.parse_items(items) is items
    assert c.parse_items('[{"sku": "DSK-MUG-001", "quantity": 2}]') == items
    assert c.parse_items('{"sku": "DSK-MUG-001", "quantity": 2}') == items
    assert c.parse_items("DSK-MUG-001:2, DSK-TEE-001") == [
        {"sku": "DSK-MUG-001", "quantity": "2"},
        {"sku": "DSK-TEE-001", "quantity": 1},
    ]
    assert c.parse_items("[broken") == "[broken"
    order = validate(c.parse_items("DSK-MUG-001:2,DSK-TEE-001"))
    assert [(x.sku, x.quantity) for x in order.lines] == [("DSK-MUG-001", 2), ("DSK-TEE-001", 1)]


def test_parse_catalog_validates_each_entry() -> None:
    products = c.parse_catalog(
        {
            "currency": "USD",
            "products": [
                {"sku": "A-1", "name": "A", "price_cents": 5, "cost_cents": 1, "stock": 3}
            ],
        }
    )
    assert products == [c.Product("A-1", "A", 5, 1, "USD", 3)]
    with pytest.raises(ValueError, match="invalid catalog") as caught:
        c.parse_catalog(
            {
                "products": [
                    {"sku": "A-1", "name": "A", "price_cents": -5, "cost_cents": 1},
                    {"sku": "A-1", "name": "B", "price_cents": 5, "cost_cents": 1},
                    {"sku": "a", "name": "C", "price_cents": 5, "cost_cents": 1, "currency": "usd"},
                    {"name": "no sku"},
                ]
            }
        )
    assert str(caught.value) == (
        "invalid catalog: products[0]: price, cost and stock cannot be negative; "
        "products[2].sku: 'a' is not a valid SKU; "
        "products[2].currency: 'usd' is not ISO 4217; "
        "products[3]: KeyError('sku'); duplicate SKU A-1"
    )
    with pytest.raises(ValueError, match="a catalog is an object with a 'products' list"):
        c.parse_catalog([])


# -- life cycle and keys ------------------------------------------------------------


def test_order_life_cycle() -> None:
    s = c.OrderStatus
    assert c.can_transition(s.VALIDATED, s.RESERVED)
    assert c.can_transition(s.RESERVED, s.PAID)
    assert c.can_transition(s.RESERVED, s.PAYMENT_FAILED)
    assert c.can_transition(s.PAYMENT_FAILED, s.CANCELLED)
    assert c.can_transition(s.PAID, s.COMPLETED)
    assert not c.can_transition(s.PAID, s.CANCELLED)
    assert not c.can_transition(s.COMPLETED, s.RESERVED)
    with pytest.raises(c.OrderStateError, match="order o1 is completed; it cannot become reserved"):
        c.require_transition("o1", s.COMPLETED, s.RESERVED)
    c.require_transition("o1", s.VALIDATED, s.RESERVED)


def test_keys_are_derived_from_the_order_id() -> None:
    assert c.payment_idempotency_key("ord_1") == "order-ord_1-payment"
    assert c.payment_idempotency_key("ord_1") == c.payment_idempotency_key("ord_1")
    assert c.payment_idempotency_key("ord_1") != c.payment_idempotency_key("ord_2")


@pytest.mark.parametrize(
    "error",
    [
        c.OrderInvalid(["a", "b"]),
        c.OutOfStock("DSK-MUG-001", 3, 1),
        c.PaymentDeclined("o1", "card_declined", "0002"),
        c.OrderNotFound("o1"),
    ],
)
def test_errors_survive_pickling_with_their_message(error: Exception) -> None:
    # Step results cross process boundaries (a distributed step runner) as pickles.
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)


def test_error_messages() -> None:
    assert str(c.OutOfStock("DSK-MUG-001", 3, 1)) == (
        "out of stock: DSK-MUG-001 has 1 left, the order needs 3"
    )
    assert str(c.PaymentDeclined("o1", "card_declined", "0002")) == (
        "payment for order o1 declined: card_declined (card ending 0002)"
    )
