"""Each built-in agent summarises its result in one exact line (shown by ``devskyy run``)."""

from __future__ import annotations

from typing import Any

import pytest

from devskyy.agents.commerce.financial import FinancialAgent
from devskyy.agents.commerce.inventory import InventoryAgent
from devskyy.agents.content import ContentGeneratorAgent
from devskyy.agents.email import EmailAgent
from devskyy.agents.fixer import FixerAgent
from devskyy.agents.publisher import PublisherAgent
from devskyy.agents.scanner import ScannerAgent
from devskyy.agents.security import SecurityAgent
from devskyy.agents.seo import SeoAgent
from devskyy.agents.social import SocialMediaAgent
from devskyy.runtime.agent import BaseAgent

COUNTS = {"total": 22, "fixable": 5, "by_severity": {"critical": 0, "high": 1, "low": 17}}

CASES: list[tuple[type[BaseAgent], dict[str, Any], str]] = [
    (
        ScannerAgent,
        {"files_scanned": 5, "counts": COUNTS},
        "5 files, 22 issues (1 high, 17 low), 5 fixable",
    ),
    (
        ScannerAgent,
        {
            "files_scanned": 5,
            "counts": {**COUNTS, "total": 18, "fixable": 0},
            "comparison": {"before": {"total": 22}},
        },
        "5 files, 18 issues (1 high, 17 low), 0 fixable (before: 22)",
    ),
    (SecurityAgent, {"files_scanned": 9, "counts": {"total": 0}}, "9 files, 0 findings"),
    (
        FixerAgent,
        {
            "fixes_applied": [{}, {}],
            "files_fixed": 1,
            "remaining_counts": {"total": 3},
            "dry_run": True,
        },
        "would apply 2 fixes in 1 files, 3 left",
    ),
    (
        ContentGeneratorAgent,
        {"generator": "anthropic", "article": {"title": "T"}, "word_count": 9, "cost_usd": 0.0123},
        "anthropic article 'T', 9 words, $0.0123",
    ),
    (
        SeoAgent,
        {"score_before": 70, "score": 81.5, "changes": [1], "suggestions": []},
        "score 70 -> 81.5, 1 change, 0 suggestion(s)",
    ),
    (
        PublisherAgent,
        {"status": "created", "slug": "s", "url": "https://x.test/s"},
        "created s https://x.test/s",
    ),
    (
        SocialMediaAgent,
        {"posts": [{"platform": "x"}, {"platform": "linkedin"}]},
        "2 posts: x, linkedin",
    ),
    (EmailAgent, {"status": "sent to 2 recipients"}, "sent to 2 recipients"),
    (
        InventoryAgent,
        {"order_id": "o1", "status": "reserved", "reservations": [{"sku": "A", "quantity": 2}]},
        "order o1 reserved: A x2",
    ),
    (
        FinancialAgent,
        {
            "order_id": "o1",
            "status": "succeeded",
            "amount": "14.00 USD",
            "card": "visa ending 4242",
            "replayed": True,
        },
        "order o1 succeeded: 14.00 USD (visa ending 4242) (replayed)",
    ),
]


@pytest.mark.parametrize(("cls", "result", "line"), CASES)
def test_headline(cls: type[BaseAgent], result: dict[str, Any], line: str) -> None:
    assert cls.headline(cls.__new__(cls), result) == line
