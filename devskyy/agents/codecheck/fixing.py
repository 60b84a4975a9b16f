"""The fixer's plan: new contents for the named files, computed in memory.

``plan_fixes`` reads each named file once and computes its fixed text in three passes,
never touching the disk: the caller shows the diffs (dry run) or backs up and writes.

1. libcst codemods for the named bandit findings (line-count preserving, so the scan's
   line numbers stay valid for pass 2);
2. ruff's safe fixes for the named ruff findings. When every fixable finding of a rule in
   the file is named, ruff itself fixes that rule (``--select RULE --fix``, with its own
   conflict handling); when only some are named, exactly their edits are applied (one
   pass, overlapping edits skipped);
3. ``ruff format``, when the file was named for formatting, or when the scan checked
   formatting and found the file clean and passes 1-2 changed it (so a fix never leaves
   a formatted file unformatted).

A file that changed since the scan (sha256 differs), does not decode as UTF-8, resolves
outside the root, or would no longer compile is left alone and reported.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devskyy.agents.codecheck import codemods, ruff
from devskyy.agents.codecheck.files import PathEscape, resolve_inside, sha256_bytes
from devskyy.agents.codecheck.issues import FORMAT_RULE, Issue, Tool


@dataclass(frozen=True)
class Fix:
    """One applied fix: the line before, and the same line after (None when removed)."""

    file: str
    rule: str
    tool: str
    line: int
    before: str
    after: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rule": self.rule,
            "tool": self.tool,
            "line": self.line,
            "before": self.before,
            "after": self.after,
        }


@dataclass
class FilePlan:
    """What the fixer will do to one file."""

    file: str
    path: Path
    original: bytes
    new_text: str | None = None
    fixes: list[Fix] = field(default_factory=list)
    fixed: set[Issue] = field(default_factory=set)
    error: str | None = None

    @property
    def changed(self) -> bool:
        return self.new_text is not None and self.new_text.encode("utf-8") != self.original

    def diff(self) -> str:
        """A unified diff of the planned change (empty when nothing changes)."""
        if not self.changed or self.new_text is None:
            return ""
        before = self.original.decode("utf-8").splitlines(keepends=True)
        after = self.new_text.splitlines(keepends=True)
        return "".join(difflib.unified_diff(before, after, f"a/{self.file}", f"b/{self.file}"))


FIX_TYPES = ("auto", "security", "performance", "format")
_RULE = re.compile(ruff.RULE_PATTERN)


def in_scope(issue: Issue, fix_type: str) -> bool:
    """Whether a fix of this type handles this issue."""
    if not issue.fixable:
        return False
    if fix_type == "security":
        return issue.tool == Tool.BANDIT
    if fix_type == "performance":
        return issue.tool == Tool.RUFF and issue.rule.startswith(("PERF", "C4"))
    if fix_type == "format":
        return issue.tool == Tool.RUFF_FORMAT
    return True


def line_map(before: list[str], after: list[str]) -> dict[int, int | None]:
    """1-based line numbers of ``before`` mapped to ``after`` (None: the line went away)."""
    mapping: dict[int, int | None] = {}
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for offset, i in enumerate(range(i1, i2)):
            if tag == "equal" or (tag == "replace" and j2 > j1):
                mapping[i + 1] = min(j1 + offset, j2 - 1) + 1
            else:
                mapping[i + 1] = None
    return mapping


def _line(lines: list[str], number: int | None) -> str | None:
    if number is None or not 1 <= number <= len(lines):
        return None
    return lines[number - 1].rstrip("\r\n")


def _offset(lines: list[str], row: int, column: int) -> int:
    return sum(len(line) for line in lines[: row - 1]) + column - 1


def apply_edits(text: str, diagnostics: Sequence[dict[str, Any]]) -> str:
    """Apply the safe fixes of ``diagnostics`` in one pass, skipping overlapping ones."""
    lines = text.splitlines(keepends=True)
    spans: list[tuple[int, int, str]] = []
    taken: list[tuple[int, int]] = []
    for diag in sorted(diagnostics, key=lambda d: (d["location"]["row"], d["location"]["column"])):
        edits = [
            (
                _offset(lines, e["location"]["row"], e["location"]["column"]),
                _offset(lines, e["end_location"]["row"], e["end_location"]["column"]),
                str(e["content"]),
            )
            for e in diag["fix"]["edits"]
        ]
        if any(s < te and ts < max(e, s + 1) for s, e, _ in edits for ts, te in taken):
            continue
        spans += edits
        taken += [(s, max(e, s + 1)) for s, e, _ in edits]
    for start, end, content in sorted(spans, reverse=True):
        text = text[:start] + content + text[end:]
    return text


def _safe(diag: dict[str, Any]) -> bool:
    fix = diag.get("fix")
    return bool(fix and fix.get("applicability") == "safe")


async def _ruff_pass(
    plan: FilePlan, text: str, named: list[Issue], settings: ruff.RuffSettings
) -> str:
    rules = sorted({i.rule for i in named})
    wanted = _by_place(named)
    fresh = [d for d in await ruff.check_text(text, plan.path, settings, rules) if _safe(d)]
    hits = [d for d in fresh if _place(d) in wanted]
    if not hits:
        return text
    whole = {
        rule
        for rule in {d["code"] for d in hits}
        if all(_place(d) in wanted for d in fresh if d["code"] == rule)
    }
    new = apply_edits(text, [d for d in hits if d["code"] not in whole])
    if whole:
        new = await ruff.fix_text(new, plan.path, settings, sorted(whole))
    before, after = text.splitlines(), new.splitlines()
    mapping = line_map(before, after)
    left = Counter(_place(d) for d in await ruff.check_text(new, plan.path, settings, rules))
    for (code, row), count in sorted(Counter(_place(d) for d in hits).items()):
        moved = mapping.get(row)
        still = left.get((code, moved), 0) if moved is not None else 0
        for issue in wanted[(code, row)][: max(count - still, 0)]:
            plan.fixed.add(issue)
            plan.fixes.append(
                Fix(
                    plan.file,
                    code,
                    Tool.RUFF.value,
                    row,
                    _line(before, row) or "",
                    _line(after, moved),
                )
            )
    return new


def _place(diag: dict[str, Any]) -> tuple[str, int]:
    return str(diag["code"]), int(diag["location"]["row"])


def _by_place(issues: list[Issue]) -> dict[tuple[str, int], list[Issue]]:
    """Issues by (rule, line); several findings of one rule may share a line."""
    places: dict[tuple[str, int], list[Issue]] = {}
    for issue in sorted(issues, key=lambda i: i.column):
        places.setdefault((issue.rule, issue.line), []).append(issue)
    return places


def _codemod_pass(plan: FilePlan, text: str, named: list[Issue]) -> str:
    wanted = _by_place(named)
    new, applied = codemods.rewrite(text, list(wanted))
    before, after = text.splitlines(), new.splitlines()
    for rule, line in applied:
        plan.fixed.update(wanted[(rule, line)])
        plan.fixes.append(
            Fix(
                plan.file,
                rule,
                Tool.BANDIT.value,
                line,
                _line(before, line) or "",
                _line(after, line),
            )
        )
    return new


async def _format_pass(
    plan: FilePlan, text: str, named: list[Issue], keep_formatted: bool, settings: ruff.RuffSettings
) -> str:
    if not named and not keep_formatted:
        return text
    new = await ruff.format_text(text, plan.path, settings)
    for issue in named:
        plan.fixed.add(issue)
        before, after = text.splitlines(), new.splitlines()
        first = next(
            (n for n, (a, b) in enumerate(zip(before, after, strict=False), 1) if a != b),
            min(len(before), len(after)) + 1,
        )
        plan.fixes.append(
            Fix(
                plan.file,
                FORMAT_RULE,
                Tool.RUFF_FORMAT.value,
                first,
                _line(before, first) or "",
                _line(after, first),
            )
        )
    return new


async def plan_file(
    root: Path,
    file: str,
    issues: list[Issue],
    *,
    expected_sha: str | None,
    format_clean: bool,
    settings: ruff.RuffSettings,
) -> FilePlan:
    """The fixed text of one file for its named, in-scope issues."""
    try:
        path = resolve_inside(root, file)
    except PathEscape as exc:
        return FilePlan(file, root / file, b"", error=f"refused: {exc}")
    if not path.is_file():
        return FilePlan(file, path, b"", error="refused: not a regular file")
    plan = FilePlan(file, path, path.read_bytes())
    if expected_sha is not None and sha256_bytes(plan.original) != expected_sha:
        plan.error = "skipped: the file changed since the scan"
        return plan
    try:
        text = plan.original.decode("utf-8")
        compiled = _compiles(text, file)
    except UnicodeDecodeError:
        plan.error = "skipped: not UTF-8"
        return plan
    text = _codemod_pass(plan, text, [i for i in issues if i.tool == Tool.BANDIT])
    ruff_named = [i for i in issues if i.tool == Tool.RUFF and _RULE.match(i.rule)]
    if ruff_named:
        text = await _ruff_pass(plan, text, ruff_named, settings)
    fmt = [i for i in issues if i.tool == Tool.RUFF_FORMAT]
    text = await _format_pass(
        plan, text, fmt, format_clean and text.encode() != plan.original, settings
    )
    if compiled and not _compiles(text, file):
        plan.error = "skipped: the fixed file would not compile"
        plan.fixes.clear()
        plan.fixed.clear()
        return plan
    plan.new_text = text
    return plan


def _compiles(text: str, file: str) -> bool:
    try:
        compile(text, file, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True
