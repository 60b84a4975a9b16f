"""Applying ruff's edits and quoting changes, in time linear in the text.

Positions are ruff's (1-based row and column); ``_Offsets`` turns them into character
offsets by one split of the text, and ``apply_edits`` applies many edits in one pass
(never one string copy per edit, which was quadratic on a file with thousands of
fixes). The quotes are what a fix record shows: at most ``QUOTE_LINES`` lines each.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from typing import Any

from devskyy.agents.codecheck import linediff

# A fix's before/after quote at most this many lines each (the diff holds the rest).
QUOTE_LINES = 20


class Offsets:
    """Character offsets of (row, column) positions in a text, in O(log n) each."""

    def __init__(self, text: str) -> None:
        # Row n starts after the (n-1)th newline (C-speed split, not a loop per char).
        rows = text.split("\n")[:-1]
        self.starts = [0, *itertools.accumulate(len(row) + 1 for row in rows)]
        self.size = len(text)

    def at(self, row: int, column: int) -> int:
        if row - 1 >= len(self.starts):
            return self.size
        return min(self.starts[row - 1] + column - 1, self.size)

    def row_of(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)


def _edits(offsets: Offsets, diag: dict[str, Any]) -> list[tuple[int, int, str]]:
    return [
        (
            offsets.at(e["location"]["row"], e["location"]["column"]),
            offsets.at(e["end_location"]["row"], e["end_location"]["column"]),
            str(e["content"]),
        )
        for e in diag["fix"]["edits"]
    ]


def apply_edits(text: str, diagnostics: Sequence[dict[str, Any]]) -> str:
    """Apply the safe fixes of ``diagnostics`` in one pass, skipping overlapping ones."""
    offsets = Offsets(text)
    spans: list[tuple[int, int, str]] = []
    taken: list[tuple[int, int]] = []  # sorted, disjoint
    for diag in sorted(diagnostics, key=lambda d: (d["location"]["row"], d["location"]["column"])):
        edits = _edits(offsets, diag)
        claimed = [(s, max(e, s + 1)) for s, e, _ in edits]
        if any(_overlaps(taken, s, e) for s, e in claimed):
            continue
        spans += edits
        for span in claimed:
            bisect.insort(taken, span)
    out: list[str] = []
    position = 0
    for start, end, content in sorted(spans):
        out += [text[position:start], content]
        position = max(position, end)
    out.append(text[position:])
    return "".join(out)


def _overlaps(taken: list[tuple[int, int]], start: int, end: int) -> bool:
    k = bisect.bisect_left(taken, (start, start))
    return any(s < end and start < e for s, e in taken[max(k - 1, 0) : k + 1])


def _quote(lines: Sequence[str]) -> str:
    lines = list(lines)
    while lines and not lines[-1].strip():  # trailing blank lines say nothing
        lines.pop()
    shown = [line.rstrip("\r\n") for line in lines[:QUOTE_LINES]]
    if len(lines) > QUOTE_LINES:
        shown.append(f"… ({len(lines) - QUOTE_LINES} more lines)")
    return "\n".join(shown)


def edit_quote(text: str, offsets: Offsets, diag: dict[str, Any]) -> tuple[str, str | None]:
    """(before, after) of the lines one diagnostic's edits span, applied alone."""
    edits = sorted(_edits(offsets, diag))
    first = offsets.row_of(edits[0][0])
    last_end = max(e for _, e, _ in edits)
    last = offsets.row_of(max(last_end - 1, edits[0][0]))
    start, stop = offsets.starts[first - 1], offsets.at(last + 1, 1)
    region = text[start:stop]
    pieces: list[str] = []
    position = start
    for s, e, content in edits:
        pieces += [text[position:s], content]
        position = max(position, e)
    pieces.append(text[position:stop])
    after = "".join(pieces)
    return _quote(region.splitlines()), _quote(after.splitlines()) if after.strip() else None


def quote_change(
    before: list[str], after: list[str], codes: list[linediff.Opcode], line: int
) -> tuple[str, str | None]:
    """(before, after) of the changed block of ``codes`` at (or next after) ``line``."""
    k = max(bisect.bisect_right(codes, line - 1, key=lambda c: c[1]) - 1, 0)
    while k < len(codes) and codes[k][0] == "equal":
        k += 1
    if k == len(codes):
        return "", None
    _, i1, i2, j1, j2 = codes[k]
    return _quote(before[i1:i2]), _quote(after[j1:j2]) if j2 > j1 else None


def first_change(before: list[str], after: list[str]) -> tuple[int, str, str | None]:
    """(line, before, after) from the first changed line through the first change that
    is more than blank lines (so a reformat shows what it did, not one empty line)."""
    codes = linediff.opcodes(before, after)
    changes = [c for c in codes if c[0] != "equal"]
    if not changes:
        return 1, "", ""
    first = changes[0]
    last = next(
        (c for c in changes if any(x.strip() for x in before[c[1] : c[2]] + after[c[3] : c[4]])),
        first,
    )
    old, new = before[first[1] : last[2]], after[first[3] : last[4]]
    return first[1] + 1, _quote(old), _quote(new) if new else None
