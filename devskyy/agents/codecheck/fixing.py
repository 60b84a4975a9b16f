"""The fixer's plan: new contents for the named files, computed in memory.

``plan_file`` reads a named file once and computes its fixed text in three passes,
never touching the disk: the caller shows the diffs (dry run) or backs up and writes.

1. libcst codemods for the named bandit findings (line-count preserving, so the scan's
   line numbers stay valid for pass 2). ``fix_type: auto`` applies only rewrites proven
   equivalent; ``fix_type: security`` also those that change behaviour by definition
   (each such fix carries its ``behaviour_change`` label);
2. ruff's *safe* fixes for the named ruff findings, judged by the scan's policy (the
   project's own configuration, or devskyy's) from the scanned root. When every fixable
   finding of a rule in the file is named, ruff itself fixes that rule (``--select RULE
   --fix``, with its own conflict handling); when only some are named, exactly their
   edits are applied (one pass, overlapping edits skipped);
3. ``ruff format``, when the file was named for formatting, or when the scan checked
   formatting and found the file clean and passes 1-2 changed it (so a fix never leaves
   a formatted file unformatted).

Each pass records *candidate* fixes with their real before and after (the lines ruff's
or the codemod's edit spans, and what they become); ``settle`` keeps those the rescan
of the fixed text confirms. A file that changed since the scan (sha256 differs), does not
decode as UTF-8, resolves outside the root, or would no longer compile is left alone
and reported. Every step is linear in the file's size (see ``linediff``).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devskyy.agents.codecheck import codemods, linediff, ruff
from devskyy.agents.codecheck.edits import (
    Offsets,
    apply_edits,
    edit_quote,
    first_change,
)
from devskyy.agents.codecheck.files import PathEscape, resolve_inside, sha256_bytes
from devskyy.agents.codecheck.issues import FORMAT_RULE, Issue, Tool
from devskyy.agents.codecheck.perf import PARSE_LOCK

# The before of a fix whose lines are read from the final diff once it is known.
PENDING = "\0pending"
# From this size on, a complete scan's word is taken for which rules are named whole:
# checking first would cost as much as the fix (its JSON alone is tens of megabytes).
LARGE_FILE_LINES = 5_000


@dataclass(frozen=True)
class Fix:
    """One applied fix: the lines its edit spans before, and what they became (None when
    removed); ``behaviour_change`` says how a deliberately behaviour-changing fix differs."""

    file: str
    rule: str
    tool: str
    line: int
    before: str
    after: str | None
    behaviour_change: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rule": self.rule,
            "tool": self.tool,
            "line": self.line,
            "before": self.before,
            "after": self.after,
            "behaviour_change": self.behaviour_change,
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
    # Each candidate fix, the named issues it answers and the round it belongs to
    # (settled against the rescan); ``bases`` holds the text each round started from.
    candidates: list[tuple[Fix, list[Issue], int]] = field(default_factory=list)
    bases: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.new_text is not None and self.new_text.encode("utf-8") != self.original

    def diff(self) -> str:
        """A unified diff of the planned change (empty when nothing changes)."""
        if not self.changed or self.new_text is None:
            return ""
        before = self.original.decode("utf-8").splitlines(keepends=True)
        after = self.new_text.splitlines(keepends=True)
        return "".join(linediff.unified(before, after, f"a/{self.file}", f"b/{self.file}"))


FIX_TYPES = ("auto", "security", "performance", "format")


def fixable_by_fix_type(issues: Collection[Issue]) -> dict[str, int]:
    """How many of ``issues`` each fix type would fix (the workflow's ``when``)."""
    return {t: sum(1 for i in issues if in_scope(i, t)) for t in FIX_TYPES}


_RULE = re.compile(ruff.RULE_PATTERN)


def in_scope(issue: Issue, fix_type: str) -> bool:
    """Whether a fix of this type handles this issue.

    ``security`` takes the bandit findings a codemod fixes, also those whose fix
    changes behaviour (the scan's ``action`` says so); the other types only what is
    ``fixable`` (safe).
    """
    if fix_type == "security":
        return issue.tool == Tool.BANDIT and (
            issue.fixable or (issue.action or "").startswith(codemods.SECURITY_FIX_ACTION)
        )
    if not issue.fixable:
        return False
    if fix_type == "performance":
        return issue.tool == Tool.RUFF and issue.rule.startswith(("PERF", "C4"))
    if fix_type == "format":
        return issue.tool == Tool.RUFF_FORMAT
    return True


def allowed_verdicts(fix_type: str) -> tuple[codemods.Verdict, ...]:
    if fix_type == "security":
        return (codemods.Verdict.EQUIVALENT, codemods.Verdict.BEHAVIOUR)
    return (codemods.Verdict.EQUIVALENT,)


def line_map(before: list[str], after: list[str]) -> dict[int, int | None]:
    """1-based line numbers of ``before`` mapped to ``after`` (None: the line went away)."""
    return linediff.line_map(before, after)


def _safe(diag: dict[str, Any]) -> bool:
    return ruff.safe_fix(diag) and bool(diag["fix"].get("edits"))


def _place(diag: dict[str, Any]) -> tuple[str, int]:
    return str(diag["code"]), int(diag["location"]["row"])


def _by_place(issues: Collection[Issue]) -> dict[tuple[str, int], list[Issue]]:
    """Issues by (rule, line); several findings of one rule may share a line."""
    places: dict[tuple[str, int], list[Issue]] = {}
    for issue in sorted(issues, key=lambda i: i.column):
        places.setdefault((issue.rule, issue.line), []).append(issue)
    return places


async def _ruff_pass(
    plan: FilePlan,
    text: str,
    named: list[Issue],
    *,
    known_whole: Collection[str],
    settings: ruff.RuffSettings,
    root: Path,
) -> str:
    """ruff's safe fixes of the ``named`` issues.

    A rule goes to ruff whole when every fixable finding of it in the file is named:
    ``known_whole`` when the caller knows so from a complete scan (then nothing needs
    checking first, and the fix's before/after are read from the final diff,
    ``PENDING``); otherwise a check of the text tells, and gives each edit.
    """
    wanted = _by_place(named)
    known = sorted({i.rule for i in named} & set(known_whole))
    for issue in (i for i in named if i.rule in known):
        fix = Fix(plan.file, issue.rule, Tool.RUFF.value, issue.line, PENDING, None)
        plan.candidates.append((fix, [issue], 0))
    rules = sorted({i.rule for i in named} - set(known))
    whole = set(known)
    new = text
    if rules:
        checked = await ruff.check_text(text, plan.path, settings, rules, root)
        fresh = [d for d in checked if _safe(d)]
        hits = [d for d in fresh if _place(d) in wanted]
        whole |= {
            rule
            for rule in {d["code"] for d in hits}
            if all(_place(d) in wanted for d in fresh if d["code"] == rule)
        }
        offsets = Offsets(text)
        for diag in hits:
            before, after = edit_quote(text, offsets, diag)
            code, line = _place(diag)
            fix = Fix(plan.file, code, Tool.RUFF.value, line, before, after)
            plan.candidates.append((fix, wanted[(code, line)], 0))
        new = apply_edits(text, [d for d in hits if d["code"] not in whole])
    if whole:
        new = await ruff.fix_text(new, plan.path, settings, sorted(whole), root)
    return new


def _codemod_pass(plan: FilePlan, text: str, named: list[Issue], fix_type: str) -> str:
    wanted = _by_place(named)
    new, applied = codemods.rewrite(text, list(wanted), allowed_verdicts(fix_type))
    if not applied:
        return text
    before, after = text.splitlines(), new.splitlines()
    for rule, line in applied:
        fix = Fix(
            plan.file,
            rule,
            Tool.BANDIT.value,
            line,
            before[line - 1] if line <= len(before) else "",
            after[line - 1] if line <= len(after) else None,
            codemods.BEHAVIOUR_NOTE.get(rule) if fix_type == "security" else None,
        )
        plan.candidates.append((fix, wanted[(rule, line)], 0))
    return new


async def _format_pass(
    plan: FilePlan,
    text: str,
    named: list[Issue],
    *,
    keep_formatted: bool,
    settings: ruff.RuffSettings,
    root: Path,
) -> str:
    if not named and not keep_formatted:
        return text
    new = await ruff.format_text(text, plan.path, settings, root)
    if named and new != text:
        line, before, after = first_change(text.splitlines(), new.splitlines())
        fix = Fix(plan.file, FORMAT_RULE, Tool.RUFF_FORMAT.value, line, before, after)
        plan.candidates.append((fix, list(named), 0))
    return new


async def plan_file(
    root: Path,
    file: str,
    issues: list[Issue],
    *,
    expected_sha: str | None,
    format_clean: bool,
    settings: ruff.RuffSettings,
    fix_type: str = "auto",
    text: str | None = None,
    compile_check: bool = True,
    known_whole: Collection[str] = (),
) -> FilePlan:
    """The fixed text of one file for its named, in-scope issues; ``text`` is the
    content to start from when it is not the file's own (a further round).

    ``compile_check`` False leaves the "would it still compile" check to the caller's
    rescan (ruff's ``invalid-syntax``, several times faster than ``compile`` on a large
    file); ``known_whole`` are the ruff rules whose every fixable finding in the file is
    named, known from a complete scan (used for files of ``LARGE_FILE_LINES`` or more;
    their fixes quote the final diff at their line instead of their own edit)."""
    try:
        path = resolve_inside(root, file)
    except PathEscape as exc:
        return FilePlan(file, root / file, b"", error=f"refused: {exc}")
    if not path.is_file():
        return FilePlan(file, path, b"", error="refused: not a regular file")
    try:
        original = path.read_bytes()
    except OSError as exc:
        return FilePlan(file, path, b"", error=f"skipped: cannot read it ({exc.strerror})")
    plan = FilePlan(file, path, original)
    if expected_sha is not None and sha256_bytes(plan.original) != expected_sha:
        plan.error = "skipped: the file changed since the scan"
        return plan
    if file.endswith(".ipynb"):
        plan.error = "skipped: notebooks are reported, not fixed"
        return plan
    try:
        start = plan.original.decode("utf-8") if text is None else text
    except UnicodeDecodeError:
        plan.error = "skipped: not UTF-8"
        return plan
    plan.bases.append(start)
    compiled = compile_check and _compiles(start, file)
    text = _codemod_pass(plan, start, [i for i in issues if i.tool == Tool.BANDIT], fix_type)
    ruff_named = [i for i in issues if i.tool == Tool.RUFF and _RULE.match(i.rule)]
    if ruff_named:
        if text.count("\n") < LARGE_FILE_LINES:
            known_whole = ()  # small: check first, and quote each fix from its own edits
        text = await _ruff_pass(
            plan, text, ruff_named, known_whole=known_whole, settings=settings, root=root
        )
    fmt = [i for i in issues if i.tool == Tool.RUFF_FORMAT]
    text = await _format_pass(
        plan, text, fmt, keep_formatted=format_clean and text != start, settings=settings, root=root
    )
    if compiled and not _compiles(text, file):
        plan.error = "skipped: the fixed file would not compile"
        plan.candidates.clear()
        return plan
    plan.new_text = text
    return plan


def _compiles(text: str, file: str) -> bool:
    try:
        with PARSE_LOCK:  # see perf.PARSE_LOCK: compile() builds an AST too
            compile(text, file, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True
