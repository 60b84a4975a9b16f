"""One scan: which analyzers run for each scan type, concurrently, and the report.

=============  ======================================================================
scan type      analyzers
=============  ======================================================================
quick          ruff lint (configured rules) + ruff format check: the cheap subset
security       bandit (plus whether a devskyy codemod can fix each finding)
performance    ruff ``PERF`` rules + devskyy's AST checks (complexity, quadratic loops)
full           all of the above
=============  ======================================================================

ruff and bandit run as separate processes at the same time; the AST checks run in a
worker thread meanwhile. The report carries the ruff settings used, so the fixer
applies fixes with exactly the rules and formatting the scan judged by, and the sha256
of each file with issues, so the fixer can refuse a file that changed since.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from devskyy.agents.codecheck import bandit, codemods, perf, ruff
from devskyy.agents.codecheck.files import PYTHON_SUFFIXES, file_hashes, walk
from devskyy.agents.codecheck.issues import Issue, Tool, sort_issues, summarize


class ScanType(StrEnum):
    FULL = "full"
    SECURITY = "security"
    PERFORMANCE = "performance"
    QUICK = "quick"


CHECKS: dict[ScanType, tuple[str, ...]] = {
    ScanType.QUICK: ("ruff", "ruff-format"),
    ScanType.SECURITY: ("bandit",),
    ScanType.PERFORMANCE: ("ruff-perf", "devskyy-ast"),
    ScanType.FULL: ("ruff", "ruff-format", "bandit", "devskyy-ast"),
}


@dataclass(frozen=True)
class ScanSettings:
    """Everything a scan depends on besides the tree."""

    ruff: ruff.RuffSettings = field(default_factory=ruff.RuffSettings)
    perf: perf.PerfSettings = field(default_factory=perf.PerfSettings)
    bandit_skip: tuple[str, ...] = bandit.DEFAULT_SKIP


def _perf_checks(root: Path, files: Sequence[Path], settings: perf.PerfSettings) -> list[Issue]:
    found: list[Issue] = []
    for path in files:
        source = path.read_text(encoding="utf-8", errors="replace")
        found += perf.check_source(source, path.relative_to(root).as_posix(), settings)
    return found


def _mark_codemod_fixable(root: Path, issues: list[Issue]) -> list[Issue]:
    """bandit issues a codemod can fix at their exact line become ``fixable``."""
    targets: dict[str, list[tuple[str, int]]] = {}
    for issue in issues:
        if issue.tool == Tool.BANDIT and issue.rule in codemods.CODEMOD_RULES:
            targets.setdefault(issue.file, []).append((issue.rule, issue.line))
    can: set[tuple[str, str, int]] = set()
    for file, wanted in targets.items():
        source = (root / file).read_text(encoding="utf-8", errors="replace")
        can |= {(file, rule, line) for rule, line in codemods.fixable(source, wanted)}
    return [
        dataclasses.replace(i, fixable=True) if (i.file, i.rule, i.line) in can else i
        for i in issues
    ]


async def scan_files(
    root: Path, files: Sequence[Path], scan_type: ScanType, settings: ScanSettings
) -> list[Issue]:
    """The issues of ``files`` (inside ``root``) for one scan type."""
    checks = CHECKS[scan_type]
    jobs: list[Awaitable[list[Issue]]] = []
    if not files:
        return []
    if "bandit" in checks:
        jobs.append(bandit.scan(root, files, settings.bandit_skip))
    if "ruff" in checks:
        jobs.append(ruff.lint(root, files, settings.ruff))
    if "ruff-perf" in checks:
        jobs.append(ruff.lint(root, files, settings.ruff, select=ruff.PERFORMANCE_SELECT))
    if "ruff-format" in checks:
        jobs.append(ruff.format_check(root, files, settings.ruff))
    if "devskyy-ast" in checks:
        jobs.append(asyncio.to_thread(_perf_checks, root, files, settings.perf))
    results = await asyncio.gather(*jobs)
    issues = [issue for part in results for issue in part]
    if "bandit" in checks:
        issues = _mark_codemod_fixable(root, issues)
    return sort_issues(issues)


def settings_record(scan_type: ScanType, settings: ScanSettings) -> dict[str, Any]:
    """The settings part of a report (what the fixer needs to reproduce the judgement)."""
    return {
        "checks": list(CHECKS[scan_type]),
        "ruff": {
            "select": list(settings.ruff.select),
            "target_version": settings.ruff.target_version,
            "line_length": settings.ruff.line_length,
        },
        "max_complexity": settings.perf.max_complexity,
        "bandit_skip": list(settings.bandit_skip),
    }


async def scan_tree(root: Path, scan_type: ScanType, settings: ScanSettings) -> dict[str, Any]:
    """Walk ``root`` and scan its Python files: the scanner's report, without timing."""
    root = root.resolve()
    files = await asyncio.to_thread(walk, root, PYTHON_SUFFIXES)
    issues = await scan_files(root, files, scan_type, settings)
    with_issues = sorted({root / i.file for i in issues})
    return {
        "scan_type": scan_type.value,
        "target_path": str(root),
        "files_scanned": len(files),
        "issues": [i.to_dict() for i in issues],
        "counts": summarize(issues),
        "file_hashes": file_hashes(root, with_issues),
        "settings": settings_record(scan_type, settings),
        "tools": _tool_versions(CHECKS[scan_type]),
    }


def _tool_versions(checks: Sequence[str]) -> dict[str, str]:
    versions: dict[str, str] = {}
    if any(c.startswith("ruff") for c in checks):
        versions["ruff"] = ruff.ruff_version()
    if "bandit" in checks:
        versions["bandit"] = bandit.bandit_version()
    return versions


def settings_from_record(record: dict[str, Any], default: ScanSettings) -> ScanSettings:
    """The scan settings stored in a report (falling back to ``default`` per field)."""
    ruff_rec = record.get("ruff", {})
    select = [str(r) for r in ruff_rec.get("select", default.ruff.select)]
    target = str(ruff_rec.get("target_version", default.ruff.target_version))
    length = ruff_rec.get("line_length", default.ruff.line_length)
    if not all(re.match(ruff.RULE_PATTERN, r) for r in select):
        raise ValueError(f"scan settings: bad ruff rule selection {select!r}")
    if not re.match(r"^py3\d{1,2}$", target) or not isinstance(length, int):
        raise ValueError(f"scan settings: bad ruff target {target!r} or line length {length!r}")
    return ScanSettings(
        ruff=ruff.RuffSettings(select=tuple(select), target_version=target, line_length=length),
        perf=perf.PerfSettings(int(record.get("max_complexity", default.perf.max_complexity))),
        bandit_skip=tuple(record.get("bandit_skip", default.bandit_skip)),
    )
