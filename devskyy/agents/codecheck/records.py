"""What a fix run's record shows: bounded fix records and diffs, secrets masked.

Run records stay bounded whatever the file size: at most ``MAX_FIXES_PER_FILE`` fix
records per file (``fix_counts`` keeps the count of the rest) and at most
``MAX_DIFF_LINES`` lines of diff per file, cut between two changes so that what is shown
still applies as a patch (``diffs_truncated`` says so); the backup holds the original
bytes. Secrets are looked for in the shown lines only (linear in what is shown, not in
the file) and masked inside their literal (``redaction.redact``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from devskyy.agents.codecheck import redaction
from devskyy.agents.codecheck.fixing import FilePlan, Fix

MAX_FIXES_PER_FILE = 200
MAX_DIFF_LINES = 2_000


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
        values = redaction.secrets_in_lines(plan.file, _shown_lines(shown, [diff]))
        for fix in shown:
            data = fix.to_dict()
            data["before"] = redaction.redact(fix.before, values)
            data["after"] = redaction.redact(fix.after, values) if fix.after else fix.after
            fixes.append(data)
        if diff:
            diffs[plan.file] = redaction.redact(diff, values)
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
