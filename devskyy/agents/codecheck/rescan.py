"""Scanning planned file contents before they are written: the fixer's own rescan.

The fixer judges its result exactly as the next scan will, under the same policy and
scan type, but on the texts it planned (so a dry run gets true numbers too):

- ruff lint and the format check read each text from stdin with ``--stdin-filename``
  set to the file's real path, run from the scanned root: the project's configuration,
  per-file ignores, exclusions and first-party packages apply as they would on disk;
- bandit reads copies in a private temporary folder, with the project's bandit
  configuration (paths are mapped back);
- devskyy's AST checks and the codemod assessment run in memory.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Mapping
from pathlib import Path

from devskyy.agents.codecheck import bandit, perf, ruff
from devskyy.agents.codecheck.files import PYTHON_SUFFIXES
from devskyy.agents.codecheck.issues import Issue, sort_issues
from devskyy.agents.codecheck.linediff import opcodes
from devskyy.agents.codecheck.proc import gather_in_order
from devskyy.agents.codecheck.scanning import CHECKS, ScanSettings, ScanType, mark_codemods

PARALLEL = 4


async def _lint(
    root: Path, rel: str, text: str, settings: ruff.RuffSettings, select: tuple[str, ...] | None
) -> list[Issue]:
    raw = await ruff.check_text(text, root / rel, settings, select, root)
    names = {str(root / rel): rel}
    return [ruff.issue_from(root, item, names) for item in raw]


async def _format(root: Path, rel: str, text: str, settings: ruff.RuffSettings) -> list[Issue]:
    formatted = await ruff.format_text(text, root / rel, settings, root)
    if formatted == text:
        return []
    before, after = text.splitlines(), formatted.splitlines()
    codes = [c for c in opcodes(before, after) if c[0] != "equal"]
    changed = sum(max(i2 - i1, 0) + max(j2 - j1, 0) for _, i1, i2, j1, j2 in codes)
    first = codes[0][1] + 1 if codes else 1
    return [ruff.format_issue(rel, first, changed, fixable=True)]


async def _bandit(root: Path, texts: Mapping[str, str], settings: ScanSettings) -> list[Issue]:
    with tempfile.TemporaryDirectory(prefix="devskyy-rescan-") as tmp:
        base = Path(tmp).resolve()
        files = []
        for rel, text in texts.items():
            copy = base / rel
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(text, encoding="utf-8")
            files.append(copy)
        found = await bandit.scan(
            base, files, settings.bandit_skip, settings.bandit_config, config_root=root
        )
    return found


def _perf_checks(texts: Mapping[str, str], settings: perf.PerfSettings) -> list[Issue]:
    """devskyy's AST checks of every text, one after another in one worker thread."""
    return [i for rel, text in texts.items() for i in perf.check_source(text, rel, settings)]


async def scan_texts(
    root: Path, texts: Mapping[str, str], scan_type: ScanType, settings: ScanSettings
) -> list[Issue]:
    """The issues a scan of ``scan_type`` would report for ``texts`` (relative path ->
    content) as files under ``root``."""
    if not texts:
        return []
    checks = CHECKS[scan_type]
    gate = asyncio.Semaphore(PARALLEL)

    async def gated(job: Awaitable[list[Issue]]) -> list[Issue]:
        async with gate:
            return await job

    jobs: list[Awaitable[list[Issue]]] = []
    python = {rel: text for rel, text in texts.items() if rel.endswith(PYTHON_SUFFIXES)}
    for rel, text in texts.items():
        if "ruff" in checks:
            jobs.append(gated(_lint(root, rel, text, settings.ruff, None)))
        if "ruff-perf" in checks:
            jobs.append(gated(_lint(root, rel, text, settings.ruff, ruff.PERFORMANCE_SELECT)))
        if "ruff-format" in checks:
            jobs.append(gated(_format(root, rel, text, settings.ruff)))
    if "bandit" in checks and python:
        jobs.append(_bandit(root, python, settings))
    if "devskyy-ast" in checks:
        jobs.append(asyncio.to_thread(_perf_checks, python, settings.perf))
    results = await gather_in_order(jobs)
    issues = [issue for part in results for issue in part]
    if "bandit" in checks:
        issues = mark_codemods(issues, texts.get)
    return sort_issues(issues)
