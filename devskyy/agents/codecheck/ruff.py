"""ruff as lint scanner, safe fixer and formatter.

devskyy runs ruff with ``--isolated`` (no ``pyproject.toml``/``ruff.toml`` of the scanned
project is read) and ``--no-cache``, with the rule selection, target version and line
length from the scanner's manifest config. The scan policy lives in git with the other
manifests, and the same tree always gives the same findings, whoever scans it.
``# noqa`` comments in the scanned code are still honoured: they are the code's own word.

``fixable`` means ruff offers a *safe* fix (the only kind ``ruff --fix`` applies).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ruff.__main__ import find_ruff_bin  # type: ignore[import-untyped]

from devskyy.agents.codecheck.files import relative
from devskyy.agents.codecheck.issues import FORMAT_RULE, Issue, Severity, Tool
from devskyy.agents.codecheck.proc import ToolError, chunks, run

DEFAULT_SELECT = ("E4", "E7", "E9", "F", "W", "I", "B", "UP", "C4", "SIM", "PERF")
PERFORMANCE_SELECT = ("PERF",)
RULE_PATTERN = r"^(ALL|[A-Z]{1,4}\d{0,4})$"  # a rule code or prefix, as --select takes
# pyflakes/pycodestyle codes that mean "this will fail at run time" (flake8's own short list).
_HIGH = ("E9", "F63", "F7", "F82")
_MEDIUM = ("B", "F")
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@")


@dataclass(frozen=True)
class RuffSettings:
    """The part of the scanner config that ruff sees."""

    select: tuple[str, ...] = DEFAULT_SELECT
    target_version: str = "py39"
    line_length: int = 88
    extra: tuple[str, ...] = field(default=())

    def common(self) -> list[str]:
        return [
            "--isolated",
            "--no-cache",
            "--target-version",
            self.target_version,
            "--line-length",
            str(self.line_length),
            *self.extra,
        ]


@cache
def ruff_bin() -> str:
    """The ruff binary shipped by the ``ruff`` package of this environment."""
    return str(find_ruff_bin())


@cache
def ruff_version() -> str:
    argv = [ruff_bin(), "--version"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)  # noqa: S603 - our own tool
    return out.stdout.strip().removeprefix("ruff ").strip()


def severity_of(code: str) -> Severity:
    if code.startswith(_HIGH):
        return Severity.HIGH
    if code.startswith(_MEDIUM):
        return Severity.MEDIUM
    return Severity.LOW


def _issue(root: Path, item: dict[str, Any]) -> Issue:
    fix = item.get("fix") or None
    code = item.get("code") or "E999"  # ruff reports syntax errors without a code
    location = item.get("location") or {"row": 1, "column": 1}
    return Issue(
        file=relative(root, Path(item["filename"])),
        line=int(location["row"]),
        column=int(location["column"]),
        rule=code,
        tool=Tool.RUFF.value,
        severity=severity_of(code).value,
        message=str(item.get("message", "")),
        fixable=bool(fix and fix.get("applicability") == "safe"),
    )


def parse_check_output(root: Path, stdout: str) -> list[Issue]:
    """Issues from ``ruff check --output-format json``."""
    return [_issue(root, item) for item in json.loads(stdout or "[]")]


async def lint(
    root: Path, files: Sequence[Path], settings: RuffSettings, select: Sequence[str] | None = None
) -> list[Issue]:
    """``ruff check`` on ``files`` with the configured (or given) rule selection."""
    rules = ",".join(select if select is not None else settings.select)
    issues: list[Issue] = []
    for part in chunks([str(f) for f in files]):
        argv = [ruff_bin(), "check", *settings.common(), "--select", rules]
        argv += ["--output-format", "json", "--exit-zero", "--", *part]
        done = await run(argv, cwd=root)
        if done.returncode != 0:
            raise ToolError(f"ruff check failed: {done.stderr.strip()[:500]}")
        issues += parse_check_output(root, done.stdout)
    return issues


def parse_format_diff(root: Path, diff: str) -> list[Issue]:
    """One ``format`` issue per file that ``ruff format --diff`` would change."""
    issues: list[Issue] = []
    current: str | None = None
    first: int | None = None
    changed = 0
    context_before = 0

    def flush() -> None:
        if current is not None and first is not None:
            issues.append(_format_issue(root, current, first, changed))

    for line in diff.splitlines():
        if line.startswith("--- "):
            flush()
            current, first, changed, context_before = line[4:].strip(), None, 0, 0
        elif line.startswith("+++ "):
            continue
        elif (m := _HUNK.match(line)) is not None:
            if first is None:
                context_before = int(m.group(1))
        elif current is not None and line[:1] in ("-", "+"):
            changed += 1
            if first is None:
                first = max(context_before, 1)
        elif current is not None and line[:1] == " " and first is None:
            context_before += 1
    flush()
    return issues


def _format_issue(root: Path, name: str, line: int, changed: int) -> Issue:
    path = Path(name)
    if not path.is_absolute():
        path = root / path
    return Issue(
        file=relative(root, path),
        line=line,
        column=1,
        rule=FORMAT_RULE,
        tool=Tool.RUFF_FORMAT.value,
        severity=Severity.LOW.value,
        message=f"File is not formatted (ruff format would change {changed} lines)",
        fixable=True,
    )


async def format_check(root: Path, files: Sequence[Path], settings: RuffSettings) -> list[Issue]:
    """``ruff format --diff``: which files are not formatted, from their first changed line."""
    issues: list[Issue] = []
    for part in chunks([str(f) for f in files]):
        done = await run(
            [ruff_bin(), "format", *settings.common(), "--diff", "--", *part], cwd=root
        )
        if done.returncode not in (0, 1, 2):
            raise ToolError(f"ruff format failed: {done.stderr.strip()[:500]}")
        # Exit 2 means some files did not parse; ruff check reports those as E999.
        issues += parse_format_diff(root, done.stdout)
    return issues


async def check_text(
    text: str, filename: Path, settings: RuffSettings, select: Sequence[str]
) -> list[dict[str, Any]]:
    """Raw ruff diagnostics for in-memory source (the fixer's view before and after)."""
    argv = [ruff_bin(), "check", *settings.common(), "--select", ",".join(select)]
    argv += ["--output-format", "json", "--exit-zero", "--stdin-filename", str(filename), "-"]
    done = await run(argv, stdin=text)
    if done.returncode != 0:
        raise ToolError(f"ruff check failed: {done.stderr.strip()[:500]}")
    result: list[dict[str, Any]] = json.loads(done.stdout or "[]")
    return result


async def fix_text(text: str, filename: Path, settings: RuffSettings, select: Sequence[str]) -> str:
    """``text`` with ruff's safe fixes for the ``select``ed rules applied."""
    argv = [ruff_bin(), "check", *settings.common(), "--select", ",".join(select)]
    argv += ["--fix-only", "--stdin-filename", str(filename), "-"]
    done = await run(argv, stdin=text)
    if done.returncode != 0:
        raise ToolError(f"ruff --fix failed on {filename.name}: {done.stderr.strip()[:500]}")
    return done.stdout


async def format_text(text: str, filename: Path, settings: RuffSettings) -> str:
    """``text`` formatted by ``ruff format``."""
    argv = [ruff_bin(), "format", *settings.common(), "--stdin-filename", str(filename), "-"]
    done = await run(argv, stdin=text)
    if done.returncode != 0:
        raise ToolError(f"ruff format failed on {filename.name}: {done.stderr.strip()[:500]}")
    return done.stdout
