"""Pure double-entry bookkeeping: the chart of accounts and the entry of a sale.

A journal entry is a list of ``(account, amount)`` lines in integer cents, debits
positive and credits negative; ``check_balanced`` refuses any entry whose lines do not
sum to zero (or that has a zero line, or fewer than two). The store writes only
entries built here and checks the sum again before writing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from devskyy.core.commerce import CommerceError


class UnbalancedEntry(CommerceError):
    """A journal entry whose lines do not sum to zero."""


def ledger_reference(order_id: str) -> str:
    """The unique reference of an order's sale entry (one entry per order, ever)."""
    return f"sale:{order_id}"


class AccountType(StrEnum):
    """The five kinds of account of double-entry bookkeeping."""

    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    REVENUE = "revenue"
    EXPENSE = "expense"


@dataclass(frozen=True)
class Account:
    """One account of the chart."""

    code: str
    name: str
    type: AccountType


GATEWAY_CLEARING = "1100"
INVENTORY = "1300"
SALES_TAX_PAYABLE = "2100"
SALES_REVENUE = "4000"
COST_OF_GOODS_SOLD = "5000"

CHART_OF_ACCOUNTS: tuple[Account, ...] = (
    Account(GATEWAY_CLEARING, "Payment gateway clearing", AccountType.ASSET),
    Account(INVENTORY, "Inventory", AccountType.ASSET),
    Account(SALES_TAX_PAYABLE, "Sales tax payable", AccountType.LIABILITY),
    Account("3000", "Owner's equity", AccountType.EQUITY),
    Account(SALES_REVENUE, "Sales revenue", AccountType.REVENUE),
    Account(COST_OF_GOODS_SOLD, "Cost of goods sold", AccountType.EXPENSE),
)


@dataclass(frozen=True)
class EntryLine:
    """One line of a journal entry: debit when positive, credit when negative."""

    account: str
    amount_cents: int
    memo: str = ""


@dataclass(frozen=True)
class JournalEntryDraft:
    """A balanced entry ready to be written."""

    reference: str
    description: str
    currency: str
    lines: tuple[EntryLine, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "description": self.description,
            "currency": self.currency,
            "lines": [
                {"account": line.account, "amount_cents": line.amount_cents, "memo": line.memo}
                for line in self.lines
            ],
        }


def check_balanced(lines: Sequence[EntryLine]) -> None:
    """Raise ``UnbalancedEntry`` unless there are lines, none zero, summing to zero."""
    if len(lines) < 2:
        raise UnbalancedEntry("a journal entry needs at least two lines")
    if any(line.amount_cents == 0 for line in lines):
        raise UnbalancedEntry("a journal entry line cannot be zero")
    total = sum(line.amount_cents for line in lines)
    if total != 0:
        raise UnbalancedEntry(f"journal entry lines sum to {total} cents, not 0")


def sale_entry(
    order_id: str,
    currency: str,
    *,
    subtotal_cents: int,
    tax_cents: int,
    cost_cents: int,
    charge_id: str,
) -> JournalEntryDraft:
    """The entry of a paid order.

    Dr gateway clearing (total) / Cr sales revenue (subtotal) / Cr sales tax payable
    (tax), and the goods leaving stock: Dr cost of goods sold / Cr inventory (cost).
    Zero amounts (no tax, free samples) are left out rather than written as zero lines.
    """
    total = subtotal_cents + tax_cents
    candidates = [
        EntryLine(GATEWAY_CLEARING, total, f"charge {charge_id}"),
        EntryLine(SALES_REVENUE, -subtotal_cents, "sales"),
        EntryLine(SALES_TAX_PAYABLE, -tax_cents, "sales tax"),
        EntryLine(COST_OF_GOODS_SOLD, cost_cents, "cost of goods sold"),
        EntryLine(INVENTORY, -cost_cents, "goods shipped"),
    ]
    lines = tuple(line for line in candidates if line.amount_cents != 0)
    check_balanced(lines)
    return JournalEntryDraft(ledger_reference(order_id), f"Sale, order {order_id}", currency, lines)


def trial_balance(lines: Sequence[tuple[str, int]]) -> dict[str, int]:
    """Net balance per account from ``(account, amount)`` rows (debits positive)."""
    balances: dict[str, int] = {}
    for account, amount in lines:
        balances[account] = balances.get(account, 0) + amount
    return dict(sorted(balances.items()))
