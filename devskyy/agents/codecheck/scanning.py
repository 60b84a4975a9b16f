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
worker thread meanwhile. Whose rules apply (the project's own ruff and bandit
configuration, or devskyy's) is decided by ``policy`` and named in the report's
``policy``. The report carries the settings used (with the sha256 of the project's
configuration files), so the fixer applies fixes with exactly the rules and formatting
the scan judged by, and the sha256 of each file with issues, so the fixer can refuse a
file that changed since.

Notebooks are linted and format-checked by ruff (bandit and the AST checks read Python
files only). A file that cannot be read is a ``skipped`` finding, never a failed scan.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from devskyy.agents.codecheck import bandit, codemods, perf, policy, ruff
from devskyy.agents.codecheck.files import (
    PYTHON_SUFFIXES,
    SCAN_SUFFIXES,
    file_hashes,
    oserror_reason,
    relative,
    walk_tree,
)
from devskyy.agents.codecheck.fixing import fixable_by_fix_type
from devskyy.agents.codecheck.issues import Issue, Tool, skipped_issue, sort_issues, summarize
from devskyy.agents.codecheck.proc import gather_in_order
from devskyy.runtime import progress


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
    # The project's own bandit configuration (".bandit" or "pyproject.toml"), or None.
    bandit_config: str | None = None


def resolve_policy(root: Path, settings: ScanSettings) -> ScanSettings:
    """``settings`` with the root's own ruff and bandit configuration files filled in.

    A project with its own ruff configuration also decides complexity there (ruff's
    C901 with its ``max-complexity``, when it selects it): devskyy's threshold (DS101)
    is off, or it would report what the project ignores, or a function twice."""
    ruff_config = policy.ruff_config(root)
    return dataclasses.replace(
        settings,
        ruff=dataclasses.replace(settings.ruff, config=ruff_config),
        perf=settings.perf if ruff_config is None else perf.PerfSettings(max_complexity=None),
        bandit_config=policy.bandit_config(root),
    )


def _python_only(files: Sequence[Path]) -> list[Path]:
    return [f for f in files if f.name.endswith(PYTHON_SUFFIXES)]


def _perf_checks(root: Path, files: Sequence[Path], settings: perf.PerfSettings) -> list[Issue]:
    found: list[Issue] = []
    for path in files:
        try:
            source = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            found.append(skipped_issue(relative(root, path), oserror_reason(exc)))
            continue
        found += perf.check_source(source, path.relative_to(root).as_posix(), settings)
    return found


def _codemod_action(assessment: codemods.Assessment) -> str:
    if assessment.verdict is codemods.Verdict.BEHAVIOUR:
        return f"{codemods.SECURITY_FIX_ACTION} to yaml.safe_load ({assessment.reason})"
    return f"review: {assessment.reason}"


def _read(root: Path) -> Callable[[str], str | None]:
    def read(rel: str) -> str | None:
        try:
            return (root / rel).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    return read


def mark_codemods(issues: list[Issue], read: Callable[[str], str | None]) -> list[Issue]:
    """bandit issues a codemod fixes without changing behaviour become ``fixable``; the
    others get an ``action`` saying what ``fix_type: security`` would do, or why not.
    ``read`` gives a file's text by relative path (None: unreadable)."""
    targets: dict[str, list[tuple[str, int]]] = {}
    for issue in issues:
        if issue.tool == Tool.BANDIT and issue.rule in codemods.CODEMOD_RULES:
            targets.setdefault(issue.file, []).append((issue.rule, issue.line))
    verdicts: dict[tuple[str, str, int], codemods.Assessment] = {}
    for file, wanted in targets.items():
        source = read(file)
        if source is None:
            continue
        for (rule, line), verdict in codemods.assess(source, wanted).items():
            verdicts[(file, rule, line)] = verdict
    marked = []
    for issue in issues:
        found = verdicts.get((issue.file, issue.rule, issue.line))
        if found is None or issue.tool != Tool.BANDIT:
            marked.append(issue)
        elif found.verdict is codemods.Verdict.EQUIVALENT:
            marked.append(dataclasses.replace(issue, fixable=True))
        else:
            marked.append(dataclasses.replace(issue, action=_codemod_action(found)))
    return marked


def _counted(jobs: Sequence[Awaitable[list[Issue]]], unit: str) -> list[Awaitable[list[Issue]]]:
    """The jobs, each reporting "N of M checks done" when it ends (``devskyy run`` shows it)."""
    done = 0
    progress.report(0, len(jobs), unit)

    async def one(job: Awaitable[list[Issue]]) -> list[Issue]:
        nonlocal done
        result = await job
        done += 1
        progress.report(done, len(jobs), unit)
        return result

    return [one(job) for job in jobs]


async def scan_files(
    root: Path, files: Sequence[Path], scan_type: ScanType, settings: ScanSettings
) -> list[Issue]:
    """The issues of ``files`` (inside ``root``) for one scan type."""
    checks = CHECKS[scan_type]
    jobs: list[Awaitable[list[Issue]]] = []
    python = _python_only(files)
    if not files:
        return []
    if "bandit" in checks and python:
        jobs.append(bandit.scan(root, python, settings.bandit_skip, settings.bandit_config))
    if "ruff" in checks:
        jobs.append(ruff.lint(root, files, settings.ruff))
    if "ruff-perf" in checks:
        jobs.append(ruff.lint(root, files, settings.ruff, select=ruff.PERFORMANCE_SELECT))
    if "ruff-format" in checks:
        jobs.append(ruff.format_check(root, files, settings.ruff))
    if "devskyy-ast" in checks:
        jobs.append(asyncio.to_thread(_perf_checks, root, python, settings.perf))
    results = await gather_in_order(_counted(jobs, f"checks on {len(files)} files"))
    issues = [issue for part in results for issue in part]
    if "bandit" in checks:
        issues = mark_codemods(issues, _read(root))
    return sort_issues(issues)


def settings_record(scan_type: ScanType, settings: ScanSettings, root: Path) -> dict[str, Any]:
    """The settings part of a report (what the fixer needs to reproduce the judgement)."""
    ruff_settings: dict[str, Any] = {"config": settings.ruff.config}
    if settings.ruff.config is None:  # else the project's file decides these: not shown
        ruff_settings["select"] = list(settings.ruff.select)
        ruff_settings["target_version"] = settings.ruff.target_version
        ruff_settings["line_length"] = settings.ruff.line_length
    return {
        "checks": list(CHECKS[scan_type]),
        "ruff": ruff_settings,
        "max_complexity": settings.perf.max_complexity,
        "bandit_skip": list(settings.bandit_skip),
        "bandit_config": settings.bandit_config,
        "config_sha256": policy.config_hashes(root, [settings.ruff.config, settings.bandit_config]),
    }


async def scan_tree(
    root: Path, scan_type: ScanType, settings: ScanSettings, agent: str = "scanner"
) -> dict[str, Any]:
    """Walk ``root`` and scan its Python files and notebooks: the scanner's report,
    without timing. ``settings`` is devskyy's policy; the root's own configuration wins.
    ``fixable_by_fix_type`` counts, from the same issues, what each fix type would fix."""
    root = root.resolve()
    settings = resolve_policy(root, settings)
    walked = await asyncio.to_thread(walk_tree, root, SCAN_SUFFIXES)
    issues = await scan_files(root, walked.files, scan_type, settings)
    issues = sort_issues([*issues, *(skipped_issue(f, why) for f, why in walked.skipped)])
    with_issues = [root / f for f in sorted({i.file for i in issues if i.tool != Tool.WALK})]
    return {
        "scan_type": scan_type.value,
        "target_path": str(root),
        "files_scanned": len(walked.files),
        "issues": [i.to_dict() for i in issues],
        "counts": summarize(issues),
        "file_hashes": file_hashes(root, with_issues),
        "policy": policy.policy_record(settings.ruff.config, settings.bandit_config, agent),
        "settings": settings_record(scan_type, settings, root),
        "tools": _tool_versions(CHECKS[scan_type]),
        "fixable_by_fix_type": fixable_by_fix_type(issues),
    }


def _tool_versions(checks: Sequence[str]) -> dict[str, str]:
    versions: dict[str, str] = {}
    if any(c.startswith("ruff") for c in checks):
        versions["ruff"] = ruff.ruff_version()
    if "bandit" in checks:
        versions["bandit"] = bandit.bandit_version()
    return versions


class PolicyChanged(ValueError):
    """A project configuration the scan judged by changed since (scan again)."""


def settings_from_record(record: dict[str, Any], default: ScanSettings, root: Path) -> ScanSettings:
    """The scan settings stored in a report (falling back to ``default`` per field).

    Raises ``ValueError`` when a project configuration file the scan judged by is gone
    or changed since (its sha256 differs): fixing by other rules than the scan's would
    not fix what it reported.
    """
    if not record:
        return resolve_policy(root, default)
    ruff_rec = record.get("ruff", {})
    ruff_config = ruff_rec.get("config")
    bandit_config = record.get("bandit_config")
    if ruff_config not in (None, *policy.RUFF_FILES) or bandit_config not in (
        None,
        ".bandit",
        "pyproject.toml",
    ):
        raise ValueError(f"scan settings: bad configuration file {ruff_config or bandit_config!r}")
    for name, sha in dict(record.get("config_sha256", {})).items():
        try:
            now = policy.config_hashes(root, [name]).get(name)
        except OSError:
            now = None
        if now != sha:
            raise PolicyChanged(
                f"the project's configuration {name} changed since the scan; scan again"
            )
    select = [str(r) for r in ruff_rec.get("select", default.ruff.select)]
    target = str(ruff_rec.get("target_version", default.ruff.target_version))
    length = ruff_rec.get("line_length", default.ruff.line_length)
    if not all(re.match(ruff.RULE_PATTERN, r) for r in select):
        raise ValueError(f"scan settings: bad ruff rule selection {select!r}")
    if not re.match(r"^py3\d{1,2}$", target) or not isinstance(length, int):
        raise ValueError(f"scan settings: bad ruff target {target!r} or line length {length!r}")
    limit = (
        None
        if ruff_config is not None
        else record.get("max_complexity", default.perf.max_complexity)
    )
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"scan settings: bad max_complexity {limit!r}")
    return ScanSettings(
        ruff=ruff.RuffSettings(
            select=tuple(select), target_version=target, line_length=length, config=ruff_config
        ),
        perf=perf.PerfSettings(limit),
        bandit_skip=tuple(record.get("bandit_skip", default.bandit_skip)),
        bandit_config=bandit_config,
    )
