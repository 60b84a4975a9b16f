"""The pure ledger rules: balanced entries, the sale entry, the chart of accounts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devskyy.core import ledger as c
from devskyy.core.commerce import tax_cents


def test_the_ledger_reference_is_one_per_order() -> None:
    assert c.ledger_reference("ord_1") == "sale:ord_1"
    assert c.ledger_reference("ord_1") != c.ledger_reference("ord_2")


def test_sale_entry_balances_with_tax_and_cost() -> None:
    entry = c.sale_entry(
        "o1", "USD", subtotal_cents=10300, tax_cents=850, cost_cents=3740, charge_id="ch_1"
    )
    assert entry.reference == "sale:o1"
    assert [(x.account, x.amount_cents) for x in entry.lines] == [
        (c.GATEWAY_CLEARING, 11150),
        (c.SALES_REVENUE, -10300),
        (c.SALES_TAX_PAYABLE, -850),
        (c.COST_OF_GOODS_SOLD, 3740),
        (c.INVENTORY, -3740),
    ]
    assert sum(x.amount_cents for x in entry.lines) == 0
    assert entry.to_dict()["lines"][0] == {
        "account": "1100",
        "amount_cents": 11150,
        "memo": "charge ch_1",
    }


def test_sale_entry_leaves_out_zero_lines() -> None:
    entry = c.sale_entry("o1", "USD", subtotal_cents=500, tax_cents=0, cost_cents=0, charge_id="x")
    assert [(x.account, x.amount_cents) for x in entry.lines] == [("1100", 500), ("4000", -500)]


def test_unbalanced_entries_are_refused() -> None:
    line = c.EntryLine
    with pytest.raises(c.UnbalancedEntry, match="journal entry lines sum to 1 cents, not 0"):
        c.check_balanced([line("1100", 101), line("4000", -100)])
    with pytest.raises(c.UnbalancedEntry, match="at least two lines"):
        c.check_balanced([line("1100", 0)])
    with pytest.raises(c.UnbalancedEntry, match="cannot be zero"):
        c.check_balanced([line("1100", 0), line("4000", 0)])


def test_trial_balance_sums_per_account() -> None:
    rows = [("1100", 500), ("4000", -500), ("1100", 300), ("4000", -300)]
    assert c.trial_balance(rows) == {"1100": 800, "4000": -800}


def test_chart_of_accounts_covers_the_sale_entry() -> None:
    codes = {a.code for a in c.CHART_OF_ACCOUNTS}
    entry = c.sale_entry("o", "USD", subtotal_cents=1, tax_cents=1, cost_cents=1, charge_id="c")
    assert {x.account for x in entry.lines} <= codes


@given(
    subtotal=st.integers(min_value=1, max_value=10**9),
    tax_bps=st.integers(min_value=0, max_value=10_000),
    cost=st.integers(min_value=0, max_value=10**9),
)
def test_every_sale_entry_balances_and_clears_the_charged_total(
    subtotal: int, tax_bps: int, cost: int
) -> None:
    tax = tax_cents(subtotal, tax_bps)
    assert abs(tax * 10_000 - subtotal * tax_bps) <= 5_000  # within half a cent of exact
    entry = c.sale_entry(
        "o", "USD", subtotal_cents=subtotal, tax_cents=tax, cost_cents=cost, charge_id="ch"
    )
    assert sum(line.amount_cents for line in entry.lines) == 0
    assert entry.lines[0] == c.EntryLine(c.GATEWAY_CLEARING, subtotal + tax, "charge ch")
    assert all(line.amount_cents != 0 for line in entry.lines)
    balances = c.trial_balance([(x.account, x.amount_cents) for x in entry.lines])
    assert balances.get(c.SALES_REVENUE) == -subtotal
