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

What the run record shows of the result (bounded, secrets masked) is ``records``'.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devskyy.agents.codecheck import linediff, ruff
from devskyy.agents.codecheck.edits import quote_change
from devskyy.agents.codecheck.fixing import (
    PENDING,
    FilePlan,
    in_scope,
    line_map,
    plan_file,
)
from devskyy.agents.codecheck.issues import Issue, Tool, sort_issues
from devskyy.agents.codecheck.rescan import scan_texts
from devskyy.agents.codecheck.scanning import CHECKS, ScanSettings, ScanType

MAX_ROUNDS = 3
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
    broken_before = {i.file for i in issues if i.rule == ruff.SYNTAX_RULE}
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
    return any(i.rule == ruff.SYNTAX_RULE for i in found)


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
