"""From planned texts to numbers that add up: fix rounds, the rescan, bounded records.

``plan_and_settle`` plans every named file (``fixing.plan_file``), then rescans the
planned texts exactly as the next scan will (``rescan.scan_texts``: same policy, same
scan type, from the scanned root). A safe fix may make another safe fix possible (an
``UP006`` rewrite leaves a ``typing`` import unused): while the rescan still finds
in-scope fixable issues in a changed file, it plans that file again from its planned
text (at most ``MAX_ROUNDS`` rounds). So after a fix run the rescan finds no safe fix
left that the fix type covers.

Then each candidate fix is settled: a named issue counts as fixed only when the rescan
no longer reports it (same rule and tool at its line, carried to the final text by
``linediff``). The remaining issues are the scan's issues of every file left unchanged
plus the rescan's issues of the changed files, which is what a rescan of the tree under
the same policy reports: the fixer's ``remaining_counts`` equals the rescan's ``counts``.

Run records stay bounded whatever the file size: at most ``MAX_FIXES_PER_FILE`` fix
records per file (the count of the rest is kept) and at most ``MAX_DIFF_LINES`` lines of
diff per file, cut at a hunk boundary so what is shown still applies; the backup holds
the original bytes. Secrets are looked for in the shown lines only and masked inside
their literal (``security.redact``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devskyy.agents.codecheck import linediff, ruff, security
from devskyy.agents.codecheck.fixing import (
    PENDING,
    FilePlan,
    Fix,
    in_scope,
    line_map,
    plan_file,
    quote_change,
)
from devskyy.agents.codecheck.issues import Issue, Tool, sort_issues
from devskyy.agents.codecheck.rescan import scan_texts
from devskyy.agents.codecheck.scanning import CHECKS, ScanSettings, ScanType

MAX_ROUNDS = 3
SYNTAX_RULE = "invalid-syntax"
MAX_FIXES_PER_FILE = 200
MAX_DIFF_LINES = 2_000
PARALLEL_FILES = 4


@dataclass
class Settled:
    """Every file's plan, and the issues the rescan reports for each changed file."""

    plans: list[FilePlan]
    final: dict[str, list[Issue]]

    def remaining(self, issues: Iterable[Issue], changed: Iterable[str]) -> list[Issue]:
        """What a rescan reports once ``changed`` files hold their planned text: the
        scan's ``issues`` of every other file, the rescan's of those."""
        files = set(changed)
        kept = [i for i in issues if i.file not in files]
        return sort_issues([*kept, *(i for f in files for i in self.final.get(f, []))])


def scan_type_of(checks: Sequence[str]) -> ScanType:
    """The scan type whose checks a scan record lists (full when unknown)."""
    for scan_type, listed in CHECKS.items():
        if list(listed) == list(checks):
            return scan_type
    return ScanType.FULL


def is_complete(scan_results: dict[str, Any] | None) -> bool:
    """Whether a scanner's output lists every issue it counted (no one trimmed it)."""
    if not scan_results:
        return True
    listed = scan_results.get("issues")
    total = scan_results.get("counts", {}).get("total")
    return isinstance(listed, list) and len(listed) == total


def _whole_rules(issues: Sequence[Issue], chosen: dict[str, list[Issue]]) -> dict[str, set[str]]:
    """Per file, the ruff rules whose every fixable issue in it is chosen."""
    named = {id(i) for group in chosen.values() for i in group}
    whole: dict[str, set[str]] = {
        f: {i.rule for i in n if i.tool == Tool.RUFF} for f, n in chosen.items()
    }
    for issue in issues:
        if issue.tool == Tool.RUFF and issue.fixable and id(issue) not in named:
            whole.get(issue.file, set()).discard(issue.rule)
    return whole


def _by_file(issues: Iterable[Issue]) -> dict[str, list[Issue]]:
    grouped: dict[str, list[Issue]] = {}
    for issue in issues:
        grouped.setdefault(issue.file, []).append(issue)
    return grouped


async def plan_and_settle(
    root: Path,
    issues: Sequence[Issue],
    chosen: dict[str, list[Issue]],
    *,
    hashes: dict[str, str],
    format_checked: bool,
    settings: ScanSettings,
    fix_type: str,
    scan_type: ScanType,
    complete: bool = False,
) -> Settled:
    """Plan the ``chosen`` issues (file -> named issues), rescan, settle (module doc).

    ``complete``: ``issues`` are every issue the scan found in their files (not a list
    a caller trimmed), so which ruff rules are named whole is known without a check.
    """
    unformatted = {i.file for i in issues if i.tool == Tool.RUFF_FORMAT}
    gate = asyncio.Semaphore(PARALLEL_FILES)
    # ruff's rescan reports a syntax error as invalid-syntax: no compile() needed.
    ruff_judges_syntax = bool({"ruff", "ruff-perf"} & set(CHECKS[scan_type]))
    broken_before = {i.file for i in issues if i.rule == SYNTAX_RULE}
    whole = _whole_rules(issues, chosen) if complete else {}

    async def one(file: str, named: list[Issue], text: str | None = None) -> FilePlan:
        async with gate:
            return await plan_file(
                root,
                file,
                named,
                expected_sha=hashes.get(file),
                format_clean=format_checked and file not in unformatted,
                settings=settings.ruff,
                fix_type=fix_type,
                text=text,
                compile_check=not ruff_judges_syntax,
                known_whole=whole.get(file, ()) if text is None else (),
            )

    plans = list(await asyncio.gather(*(one(f, n) for f, n in sorted(chosen.items()))))
    by_file = {p.file: p for p in plans}
    changed = {p.file: p for p in plans if p.error is None and p.changed}
    texts = {f: p.new_text or "" for f, p in changed.items()}
    final = _by_file(await scan_texts(root, texts, scan_type, settings))
    for file in [f for f in changed if f not in broken_before and _broken(final.get(f, []))]:
        _refuse_broken(changed.pop(file))
    for _ in range(MAX_ROUNDS - 1):
        looked = await asyncio.gather(
            *(
                _new_in_scope(
                    root,
                    by_file[f],
                    final.get(f, []),
                    chosen[f],
                    settings=settings,
                    fix_type=fix_type,
                )
                for f in sorted(changed)
            )
        )
        again = {f: found for f, found in zip(sorted(changed), looked, strict=True) if found}
        if not again:
            break
        more = await asyncio.gather(
            *(one(f, named, by_file[f].new_text) for f, named in sorted(again.items()))
        )
        progressed: dict[str, str] = {}
        previous: dict[str, tuple[str | None, int, int]] = {}
        for extra in more:
            plan = by_file[extra.file]
            if extra.error is not None or extra.new_text in (None, plan.new_text):
                continue
            previous[plan.file] = (plan.new_text, len(plan.bases), len(plan.candidates))
            plan.bases.append(extra.bases[0])
            plan.candidates += [(f, n, len(plan.bases) - 1) for f, n, _ in extra.candidates]
            plan.new_text = extra.new_text
            progressed[plan.file] = extra.new_text or ""
        if not progressed:
            break
        rescanned = _by_file(await scan_texts(root, progressed, scan_type, settings))
        for file in progressed:
            if file not in broken_before and _broken(rescanned.get(file, [])):
                # This round broke the file: keep the previous round's result.
                plan = by_file[file]
                plan.new_text, bases, candidates = previous[file]
                del plan.bases[bases:], plan.candidates[candidates:]
                continue
            final[file] = rescanned.get(file, [])
    changed = {p.file: p for p in plans if p.error is None and p.changed}
    for plan in changed.values():
        _settle(plan, final.get(plan.file, []))
    return Settled(plans, {f: final.get(f, []) for f in changed})


async def _new_in_scope(
    root: Path,
    plan: FilePlan,
    found: list[Issue],
    named: list[Issue],
    *,
    settings: ScanSettings,
    fix_type: str,
) -> list[Issue]:
    """The in-scope issues of ``found`` (a rescan of the plan's text) that the fix itself
    brought about, or that were named and are still there: never one that was in the
    file before and not named (only named issues are fixed). A ruff finding is new when
    ruff does not report it in the original text (at the same line, carried over); the
    format issue counts only if formatting was named; bandit findings are never new
    (the codemods do not create any)."""
    candidates = [i for i in found if in_scope(i, fix_type) and i.tool != Tool.BANDIT]
    if not any(i.tool == Tool.RUFF_FORMAT for i in named):
        candidates = [i for i in candidates if i.tool != Tool.RUFF_FORMAT]
    rules = sorted({i.rule for i in candidates if i.tool == Tool.RUFF})
    if not rules:
        return candidates
    mapping = line_map(plan.bases[0].splitlines(), (plan.new_text or "").splitlines())
    before = await ruff.check_text(plan.bases[0], plan.path, settings.ruff, rules, root)
    wanted = Counter((i.rule, i.line) for i in named)
    existing: Counter[tuple[str, int | None]] = Counter()
    for diag in before:
        place = (str(diag["code"]), int(diag["location"]["row"]))
        if wanted[place] > 0:
            wanted[place] -= 1  # named: may be fixed in a later round
            continue
        existing[(place[0], mapping.get(place[1]))] += 1
    fresh = []
    for issue in candidates:
        key = (issue.rule, issue.line)
        if issue.tool == Tool.RUFF and existing[key] > 0:
            existing[key] -= 1
            continue
        fresh.append(issue)
    return fresh


def _broken(found: list[Issue]) -> bool:
    return any(i.rule == SYNTAX_RULE for i in found)


def _refuse_broken(plan: FilePlan) -> None:
    plan.error = "skipped: the fixed file would not compile"
    plan.new_text = None
    plan.candidates.clear()


def _settle(plan: FilePlan, final: list[Issue]) -> None:
    """Keep the candidate fixes the rescan confirms (``plan.fixes``, ``plan.fixed``)."""
    assert plan.new_text is not None
    after = plan.new_text.splitlines()
    left = Counter((i.rule, i.tool, i.line) for i in final)
    unformatted = any(i.tool == Tool.RUFF_FORMAT for i in final)
    maps: dict[int, dict[int, int | None]] = {}
    codes: dict[int, list[linediff.Opcode]] = {}
    bases: dict[int, list[str]] = {}
    back: dict[int, dict[int, int]] = {}
    for candidate, named, round_ in plan.candidates:
        if round_ not in maps:
            codes[round_] = linediff.opcodes(plan.bases[round_].splitlines(), after)
            maps[round_] = linediff.map_from(codes[round_])
        confirmed = []
        for issue in named:
            if issue.tool == Tool.RUFF_FORMAT:
                if not unformatted:
                    confirmed.append(issue)
                continue
            moved = maps[round_].get(issue.line)
            key = (issue.rule, issue.tool, moved or 0)
            if moved is not None and left[key] > 0:
                left[key] -= 1  # still reported there: not fixed
                continue
            confirmed.append(issue)
        if not confirmed:
            continue
        fix = candidate
        if fix.before == PENDING:  # its real before/after: the final diff at its line
            if round_ not in bases:
                bases[round_] = plan.bases[round_].splitlines()
            before, quoted = quote_change(bases[round_], after, codes[round_], fix.line)
            fix = dataclasses.replace(fix, before=before, after=quoted)
        if round_ == 0:
            plan.fixed.update(confirmed)
            plan.fixes.append(fix)
            continue
        if round_ not in back:  # a later round's line, told in the original's numbers
            forward = line_map(plan.bases[0].splitlines(), plan.bases[round_].splitlines())
            back[round_] = {new: old for old, new in forward.items() if new is not None}
        plan.fixes.append(dataclasses.replace(fix, line=back[round_].get(fix.line, fix.line)))


def _diff_lines(diff: str) -> list[str]:
    return diff.splitlines(keepends=True)


_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")
CONTEXT = 3


def _span(start: int, count: int) -> str:
    return f"{start if count else start - 1},{count}"


def _cut_hunk(header: str, body: list[str], budget: int) -> list[str]:
    """The longest prefix of one hunk that fits ``budget`` lines and ends between two
    changes, closed with the old lines that follow as context (they stay unchanged),
    so the part still applies. Empty when no change fits."""
    match = _HUNK.match(header)
    if match is None or budget < 2:
        return []
    best = 0
    for k in range(1, min(len(body), budget - 1) + 1):
        mark, following = body[k - 1][:1], body[k][:1] if k < len(body) else " "
        if following == "\\":
            continue  # "\ No newline at end of file" belongs to the line before it
        if mark in "+-\\" and (following == " " or (mark != "-" and following == "-")):
            best = k
    if not best:
        return []
    kept = body[:best]
    tail = [" " + line[1:] for line in body[best:] if line[:1] in " -"][:CONTEXT]
    kept += tail[: max(budget - 1 - best, 0)]
    old = sum(1 for line in kept if line[:1] in " -")
    new = sum(1 for line in kept if line[:1] in " +")
    start_old, start_new = int(match.group(1)), int(match.group(2))
    return [f"@@ -{_span(start_old, old)} +{_span(start_new, new)} @@\n", *kept]


def bounded_diff(diff: str, limit: int = MAX_DIFF_LINES) -> tuple[str, int]:
    """The first hunks of ``diff`` within ``limit`` lines (the last one cut between two
    changes when it does not fit whole), and the diff's total line count. What is kept
    applies as a patch on its own: it makes the first changes, not all."""
    lines = _diff_lines(diff)
    if len(lines) <= limit:
        return diff, len(lines)
    head = [line for line in lines[:2] if line.startswith(("--- ", "+++ "))]
    hunks: list[list[str]] = []
    for line in lines[len(head) :]:
        if line.startswith("@@"):
            hunks.append([line])
        elif hunks:
            hunks[-1].append(line)
    kept = list(head)
    for hunk in hunks:
        if len(kept) + len(hunk) <= limit:
            kept += hunk
            continue
        kept += _cut_hunk(hunk[0], hunk[1:], limit - len(kept))
        break
    if len(kept) <= len(head):  # not even one change fits: show none
        return "", len(lines)
    return "".join(kept), len(lines)


def _shown_lines(fixes: Iterable[Fix], diffs: Iterable[str]) -> set[str]:
    shown: set[str] = set()
    for fix in fixes:
        shown.update(fix.before.splitlines())
        shown.update((fix.after or "").splitlines())
    for diff in diffs:
        shown.update(
            line[1:].rstrip("\n")
            for line in diff.splitlines()
            if line[:1] in "+- " and not line.startswith(("+++ ", "--- "))
        )
    return shown


def records(plans: Sequence[FilePlan], dry_run: bool) -> dict[str, Any]:
    """The bounded, secret-masked ``fixes_applied``, counts and (dry run) ``diffs``."""
    fixes: list[dict[str, Any]] = []
    omitted: dict[str, int] = {}
    diffs: dict[str, str] = {}
    truncated: dict[str, dict[str, int]] = {}
    for plan in plans:
        if plan.error is not None or not (plan.fixes or plan.changed):
            continue
        shown = plan.fixes[:MAX_FIXES_PER_FILE]
        if len(plan.fixes) > len(shown):
            omitted[plan.file] = len(plan.fixes) - len(shown)
        diff = ""
        if dry_run and plan.changed:
            diff, total = bounded_diff(plan.diff())
            if len(_diff_lines(diff)) < total:
                truncated[plan.file] = {"shown_lines": len(_diff_lines(diff)), "lines": total}
        values = security.secrets_in_lines(plan.file, _shown_lines(shown, [diff]))
        for fix in shown:
            data = fix.to_dict()
            data["before"] = security.redact(fix.before, values)
            data["after"] = security.redact(fix.after, values) if fix.after else fix.after
            fixes.append(data)
        if diff:
            diffs[plan.file] = security.redact(diff, values)
    result: dict[str, Any] = {
        "fixes_applied": fixes,
        "fix_counts": {
            "applied": sum(len(p.fixes) for p in plans if p.error is None),
            "shown": len(fixes),
            "omitted_by_file": omitted,
            "behaviour_changing": sum(
                1 for p in plans if p.error is None for f in p.fixes if f.behaviour_change
            ),
        },
    }
    if dry_run:
        result["diffs"] = diffs
        result["diffs_truncated"] = truncated
    return result
