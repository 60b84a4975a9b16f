"""The scanner agent (manifest ``scanner``, capability ``scan``).

Parameters as the guide: ``scan_type`` (full | security | performance | quick),
``target_path``, ``include_live_check``; plus ``compare_with``, the ``counts`` of an
earlier scan, to report before/after (the ``rescan`` step of ``scan_and_fix``).
What each scan type runs is in ``devskyy.agents.codecheck.scanning``.

Output: ``files_scanned``, ``issues`` (file, line, column, rule, tool, severity,
confidence, message, fixable, action), ``counts`` (total, fixable, by severity, by
tool), ``fixable_by_fix_type`` (how many issues each fix type would fix) and
``fixable_for_fix_type`` (that of the ``fix_type`` parameter, default auto),
``duration_seconds``, ``live_check``, and what the fixer needs to act on exactly
these results (``target_path``, ``settings``, ``file_hashes``), and ``policy``: whose
rules judged the tree (the project's own ruff/bandit configuration, or devskyy's).

A file that cannot be read is a ``skipped`` finding; an analyzer that fails the same way
on every try (a bad project configuration, a crash on given input) is a
``PermanentError``, never retried; only a killed analyzer is a ``TemporaryError``.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

from devskyy.agents.codecheck import live
from devskyy.agents.codecheck.analysis_config import ScannerConfig, ScanParams
from devskyy.agents.codecheck.config import parse
from devskyy.agents.codecheck.issues import severity_line
from devskyy.agents.codecheck.policy import PolicyError
from devskyy.agents.codecheck.proc import ToolError, classify
from devskyy.agents.codecheck.ruff import ruff_version
from devskyy.agents.codecheck.scanning import ScanType, scan_tree
from devskyy.errors import PermanentError
from devskyy.runtime.agent import AgentStatus, BaseAgent


class ScannerAgent(BaseAgent):
    """Scans a Python codebase with ruff, bandit and devskyy's AST checks."""

    config_model = ScannerConfig
    input_model = ScanParams

    def __init__(self) -> None:
        super().__init__(agent_name="Scanner Agent", version="2.0.0")
        self.config: ScannerConfig = ScannerConfig()

    async def initialize(self) -> bool:
        """Ready when the ruff binary answers and bandit imports."""
        try:
            ruff_version()
            if find_spec("bandit") is None:
                raise ImportError("bandit is not installed")
        except (OSError, ImportError, RuntimeError) as exc:
            self.status = AgentStatus.FAILED
            self.last_error = f"analyzers unavailable: {exc}"
            return False
        self.status = AgentStatus.HEALTHY
        return True

    def headline(self, result: dict[str, Any]) -> str | None:
        counts = result.get("counts", {})
        line = f"{result.get('files_scanned')} files, {severity_line(counts)}"
        line += f", {counts.get('fixable', 0)} fixable"
        comparison = result.get("comparison")
        if isinstance(comparison, dict):
            before = comparison.get("before", {}).get("total")
            line += f" (before: {before})"
        return line

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        params = parse(ScanParams, kwargs, "scan")
        root = self.config.root(params.target_path, self.name)
        started = self.clock.monotonic()
        try:
            report = await scan_tree(
                root, ScanType(params.scan_type), self.config.scan_settings(), self.context.name
            )
        except PolicyError as exc:
            raise PermanentError(str(exc)) from None
        except ToolError as exc:
            raise classify(exc) from None
        report["fixable_for_fix_type"] = report["fixable_by_fix_type"][params.fix_type]
        if params.include_live_check:
            report["live_check"] = await live.probe(
                self.config.live_check_url,
                self.config.live_check_timeout_seconds,
                self.clock.monotonic,
            )
        else:
            report["live_check"] = None
        if params.compare_with is not None:
            report["comparison"] = compare(params.compare_with, report["counts"])
        report["duration_seconds"] = round(self.clock.monotonic() - started, 3)
        return report


def compare(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Before/after counts, and the change of each (negative: fewer issues)."""

    def delta(key: str) -> int:
        return int(after.get(key, 0)) - int(before.get(key, 0))

    severities = set(before.get("by_severity", {})) | set(after.get("by_severity", {}))
    return {
        "before": before,
        "after": after,
        "change": {
            "total": delta("total"),
            "fixable": delta("fixable"),
            "by_severity": {
                s: int(after.get("by_severity", {}).get(s, 0))
                - int(before.get("by_severity", {}).get(s, 0))
                for s in sorted(severities)
            },
        },
    }
