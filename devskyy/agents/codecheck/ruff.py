"""ruff as lint scanner, safe fixer and formatter.

ruff always runs with the scanned root as its working directory (its project root, so
first-party imports are told apart the same way by the scanner and the fixer) and with
``--no-cache`` (nothing is written into the scanned tree). Which rules apply is the
policy of ``devskyy.agents.codecheck.policy``: the project's own ruff configuration when
its root has one (then ruff discovers it as the project's own ``ruff check`` would, and
``--force-exclude`` keeps its exclusions even for files named on the command line), else
devskyy's manifest policy with ``--isolated``. ``# noqa`` comments are always honoured.

``fixable`` means ruff offers a *safe* fix (the only kind ``ruff --fix`` applies);
``--no-unsafe-fixes`` overrides a project's ``unsafe-fixes = true`` and ``--no-fix`` its
``fix = true``, so that a scan never writes and a fix never goes beyond safe edits. A few
fixes ruff marks safe change what real code does (``BEHAVIOUR_CHANGING_FIXES``, each found
where ruff's own ``--fix`` broke a library's tests): they are reported, never applied.
Notebooks (``.ipynb``) are linted and format-checked as ruff does; their findings name
the cell and are reported, not fixed (their line numbers are per cell).
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

from devskyy.agents.codecheck.files import oserror_reason, relative
from devskyy.agents.codecheck.issues import FORMAT_RULE, Issue, Severity, Tool, skipped_issue
from devskyy.agents.codecheck.proc import Completed, chunks, run, tool_error

DEFAULT_SELECT = ("E4", "E7", "E9", "F", "W", "I", "B", "UP", "C4", "SIM", "PERF")
PERFORMANCE_SELECT = ("PERF",)
RULE_PATTERN = r"^(ALL|[A-Z]{1,4}\d{0,4})$"  # a rule code or prefix, as --select takes
SYNTAX_RULE = "invalid-syntax"  # ruff's code for a syntax error (none before ruff 0.12)
# pyflakes/pycodestyle codes that mean "this will fail at run time" (flake8's own short list).
_HIGH = ("E9", "F63", "F7", "F82", SYNTAX_RULE)
_MEDIUM = ("B", "F")
# Fixes ruff marks safe that change behaviour in code projects write, and why: found in
# devskyy's trials on real libraries, where ruff's own --fix broke the library's tests.
BEHAVIOUR_CHANGING_FIXES = {
    "RUF023": "sorting __slots__ changes their order, which class builders such as attrs use",
    "PLW0245": "super.__hash__(x) and super().__hash__(x) call different methods",
}
_CELL = re.compile(r":cell \d+$")
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@")


@dataclass(frozen=True)
class RuffSettings:
    """The part of the scanner config that ruff sees."""

    select: tuple[str, ...] = DEFAULT_SELECT
    target_version: str = "py39"
    line_length: int = 88
    extra: tuple[str, ...] = field(default=())
    # The project's own configuration file (relative to the root), or None: devskyy's policy.
    config: str | None = None

    def common(self) -> list[str]:
        """Options of every ruff command (check and format)."""
        if self.config is not None:
            return ["--no-cache", "--force-exclude", *self.extra]
        return [
            "--isolated",
            "--no-cache",
            "--target-version",
            self.target_version,
            "--line-length",
            str(self.line_length),
            *self.extra,
        ]

    def check_args(self, select: Sequence[str] | None = None) -> list[str]:
        """Options of ``ruff check`` that finds: the policy's rules, or ``select``.

        Under the project's own configuration its rules apply and ``select`` only narrows
        what is reported (``narrowed``): on the command line ``--select`` would turn
        rules back on that the project's ``ignore`` turns off.
        """
        args = [*self.common(), "--no-unsafe-fixes"]
        if self.config is not None:
            return args
        return [*args, "--select", ",".join(self.select if select is None else select)]

    def fix_args(self, select: Sequence[str]) -> list[str]:
        """Options of ``ruff check --fix-only`` for exactly the ``select``ed rules (found
        under ``check_args``, so enabled by the project when it has a configuration)."""
        return [*self.common(), "--no-unsafe-fixes", "--select", ",".join(select)]

    def narrowed(
        self, found: list[dict[str, Any]], select: Sequence[str] | None
    ) -> list[dict[str, Any]]:
        """``found`` (ruff's diagnostics under ``check_args(select)``) limited to
        ``select`` where the command line could not say it (see ``check_args``)."""
        if self.config is None or select is None or "ALL" in select:
            return found
        # A file ruff could not read (E902) or parse is reported whatever the selection.
        prefixes = (*select, "E902", SYNTAX_RULE)
        return [d for d in found if str(d.get("code") or SYNTAX_RULE).startswith(prefixes)]


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


def issue_from(root: Path, item: dict[str, Any], names: dict[str, str] | None = None) -> Issue:
    """One ruff JSON diagnostic as an ``Issue`` (path relative to ``root``); ``names``
    caches relative paths by ruff's file name (one file has thousands of diagnostics)."""
    fix = item.get("fix") or None
    code = item.get("code") or SYNTAX_RULE
    location = item.get("location") or {"row": 1, "column": 1}
    message = str(item.get("message", ""))
    cell = item.get("cell")
    if cell is not None:
        message = f"cell {cell}: {message}"
    why = BEHAVIOUR_CHANGING_FIXES.get(code) if fix else None
    if why is not None:
        message = f"{message} (ruff's fix is not applied: {why})"
    filename = str(item["filename"])
    rel = names.get(filename) if names is not None else None
    if rel is None:
        rel = relative(root, Path(filename))
        if names is not None:
            names[filename] = rel
    return Issue(
        file=rel,
        line=int(location["row"]),
        column=int(location["column"]),
        rule=code,
        tool=Tool.RUFF.value,
        severity=severity_of(code).value,
        message=message,
        fixable=cell is None and safe_fix(item),
    )


def safe_fix(diag: dict[str, Any]) -> bool:
    """Whether devskyy applies ruff's fix of the diagnostic ``diag``: ruff marks it safe,
    and it is not one of ``BEHAVIOUR_CHANGING_FIXES``."""
    fix = diag.get("fix")
    return bool(
        fix
        and fix.get("applicability") == "safe"
        and diag.get("code") not in BEHAVIOUR_CHANGING_FIXES
    )


def parse_check_output(root: Path, found: list[dict[str, Any]]) -> list[Issue]:
    """Issues from ``ruff check --output-format json``'s diagnostics; an ``E902`` (the
    file could not be read: it vanished or is unreadable) becomes a ``skipped`` finding."""
    issues = []
    names: dict[str, str] = {}
    for item in found:
        if item.get("code") == "E902":
            rel = relative(root, Path(item["filename"]))
            issues.append(skipped_issue(rel, oserror_reason(str(item["message"]))))
        else:
            issues.append(issue_from(root, item, names))
    return issues


async def lint(
    root: Path, files: Sequence[Path], settings: RuffSettings, select: Sequence[str] | None = None
) -> list[Issue]:
    """``ruff check`` on ``files`` with the configured (or given) rule selection."""
    issues: list[Issue] = []
    for part in chunks([str(f) for f in files]):
        argv = [ruff_bin(), "check", *settings.check_args(select), "--no-fix"]
        argv += ["--output-format", "json", "--exit-zero", "--", *part]
        done = await run(argv, cwd=root)
        if done.returncode != 0:
            raise tool_error("ruff check", done)
        issues += parse_check_output(
            root, settings.narrowed(json.loads(done.stdout or "[]"), select)
        )
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
            name = _CELL.sub("", line[4:].strip())
            if name == current:  # the next cell of the same notebook: one issue per file
                continue
            flush()
            current, first, changed, context_before = name, None, 0, 0
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
    return format_issue(relative(root, path), line, changed, fixable=not name.endswith(".ipynb"))


def format_issue(file: str, line: int, changed: int, *, fixable: bool) -> Issue:
    """The issue of a file ``ruff format`` would change: ``changed`` lines from ``line``."""
    return Issue(
        file=file,
        line=line,
        column=1,
        rule=FORMAT_RULE,
        tool=Tool.RUFF_FORMAT.value,
        severity=Severity.LOW.value,
        message=f"File is not formatted (ruff format would change {changed} lines)",
        fixable=fixable,
    )


_FILE_ERROR = re.compile(r"^error: Failed to (parse|format|read) (.+?): (.*)$")


def _file_errors(done: Completed) -> list[tuple[str, str]] | None:
    """``ruff format``'s exit 2 when every error is about one file: the files it could
    not read, with the reason (a file that does not parse is ruff check's finding,
    ``invalid-syntax``); None when any other error (a bad configuration) is among them."""
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    unreadable: list[tuple[str, str]] = []
    for line in errors:
        match = _FILE_ERROR.match(line)
        if match is None:
            return None
        if match.group(1) != "parse":
            unreadable.append((match.group(2), oserror_reason(match.group(3))))
    return unreadable if errors else None


async def format_check(root: Path, files: Sequence[Path], settings: RuffSettings) -> list[Issue]:
    """``ruff format --diff``: which files are not formatted, from their first changed line."""
    issues: list[Issue] = []
    for part in chunks([str(f) for f in files]):
        done = await run(
            [ruff_bin(), "format", *settings.common(), "--diff", "--", *part], cwd=root
        )
        unreadable = _file_errors(done) if done.returncode == 2 else None
        if done.returncode not in (0, 1) and unreadable is None:
            raise tool_error("ruff format", done)
        issues += parse_format_diff(root, done.stdout)
        issues += [skipped_issue(relative(root, root / f), why) for f, why in unreadable or []]
    return issues


async def check_text(
    text: str,
    filename: Path,
    settings: RuffSettings,
    select: Sequence[str] | None,
    root: Path,
) -> list[dict[str, Any]]:
    """Raw ruff diagnostics for in-memory source, judged as the file ``filename`` under
    ``root`` (its configuration, its project root): the fixer's view before and after."""
    argv = [ruff_bin(), "check", *settings.check_args(select), "--no-fix"]
    argv += ["--output-format", "json", "--exit-zero", "--stdin-filename", str(filename), "-"]
    done = await run(argv, stdin=text, cwd=root)
    if done.returncode != 0:
        raise tool_error("ruff check", done)
    result: list[dict[str, Any]] = json.loads(done.stdout or "[]")
    return settings.narrowed(result, select)


async def fix_text(
    text: str, filename: Path, settings: RuffSettings, select: Sequence[str], root: Path
) -> str:
    """``text`` with ruff's safe fixes for the ``select``ed rules applied, never one of
    ``BEHAVIOUR_CHANGING_FIXES`` (a report from an older devskyy may call them fixable)."""
    select = [rule for rule in select if rule not in BEHAVIOUR_CHANGING_FIXES]
    if not select:
        return text
    argv = [ruff_bin(), "check", *settings.fix_args(select), "--fix-only"]
    argv += ["--stdin-filename", str(filename), "-"]
    done = await run(argv, stdin=text, cwd=root)
    if done.returncode != 0:
        raise tool_error(f"ruff --fix on {filename.name}", done)
    return done.stdout


async def format_text(text: str, filename: Path, settings: RuffSettings, root: Path) -> str:
    """``text`` formatted by ``ruff format`` (with the project's format settings)."""
    argv = [ruff_bin(), "format", *settings.common(), "--stdin-filename", str(filename), "-"]
    done = await run(argv, stdin=text, cwd=root)
    if done.returncode != 0:
        raise tool_error(f"ruff format on {filename.name}", done)
    return done.stdout
