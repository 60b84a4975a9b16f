"""The one issue format shared by every analyzer, the fixer and the security agent.

An ``Issue`` names a file (POSIX path relative to the scanned root), a 1-based line and
column, the rule and the tool that reported it, a severity on one scale, a message that
never contains a secret value, and whether devskyy's fixer can fix it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """One scale for every tool, most severe first."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 for critical … 3 for low."""
        return list(Severity).index(self)


class Tool(StrEnum):
    """Who reported an issue."""

    RUFF = "ruff"
    RUFF_FORMAT = "ruff-format"
    BANDIT = "bandit"
    AST = "devskyy-ast"
    DETECT_SECRETS = "detect-secrets"
    DEPENDENCIES = "devskyy-deps"
    CONFIG = "devskyy-config"
    WALK = "devskyy-walk"


FORMAT_RULE = "format"
SKIPPED_RULE = "skipped"


@dataclass(frozen=True)
class Issue:
    """One finding. ``fixable`` means devskyy's fixer has a safe fix for it."""

    file: str
    line: int
    column: int
    rule: str
    tool: str
    severity: str
    message: str
    fixable: bool = False
    confidence: str | None = None
    action: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``None`` fields kept, so every issue has the same keys)."""
        # Not dataclasses.asdict: it deep-copies every field, a cost that shows on scans
        # with tens of thousands of issues.
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "rule": self.rule,
            "tool": self.tool,
            "severity": self.severity,
            "message": self.message,
            "fixable": self.fixable,
            "confidence": self.confidence,
            "action": self.action,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Issue:
        """Read an issue back from a step's output; unknown keys are ignored."""
        return cls(
            file=str(data["file"]),
            line=int(data["line"]),
            column=int(data.get("column", 1)),
            rule=str(data["rule"]),
            tool=str(data["tool"]),
            severity=str(data.get("severity", Severity.LOW.value)),
            message=str(data.get("message", "")),
            fixable=bool(data.get("fixable", False)),
            confidence=data.get("confidence"),
            action=data.get("action"),
        )

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.line, self.column, self.rule)


def skipped_issue(file: str, reason: str) -> Issue:
    """The finding for a file a scan could not read (a symlink loop, a FIFO, no access,
    vanished mid-scan): it is named, not silently dropped, and never fixable."""
    return Issue(
        file=file,
        line=1,
        column=1,
        rule=SKIPPED_RULE,
        tool=Tool.WALK.value,
        severity=Severity.LOW.value,
        message=f"not scanned: {reason}",
    )


def sort_issues(issues: Iterable[Issue]) -> list[Issue]:
    """Issues in a stable order: file, line, column, rule."""
    return sorted(set(issues), key=lambda i: (*i.sort_key, i.tool, i.message))


def summarize(issues: Iterable[Issue]) -> dict[str, Any]:
    """Counts by severity and by tool, the total and how many are fixable."""
    items = list(issues)
    by_severity = Counter(i.severity for i in items)
    by_tool = Counter(i.tool for i in items)
    return {
        "total": len(items),
        "fixable": sum(1 for i in items if i.fixable),
        "by_severity": {s.value: by_severity.get(s.value, 0) for s in Severity},
        "by_tool": dict(sorted(by_tool.items())),
    }


def severity_line(counts: dict[str, Any], noun: str = "issues") -> str:
    """``22 issues (1 high, 4 medium, 17 low)`` from a ``summarize`` counts block."""
    severities = counts.get("by_severity", {})
    shown = ", ".join(
        f"{severities[s]} {s}" for s in ("critical", "high", "medium", "low") if severities.get(s)
    )
    line = f"{counts.get('total', 0)} {noun}"
    return f"{line} ({shown})" if shown else line
