"""Line diffs in near-linear time: opcodes, line maps and unified diffs for the fixer.

``difflib.SequenceMatcher`` is quadratic on long files whose lines repeat (blank lines,
``return result``), which made fixing one 50,000-line file take over a minute. This is
the patience diff (Bram Cohen's, as ``git diff --patience``): lines that occur exactly
once on both sides anchor the match (the longest increasing run of them, O(n log n)),
common leading and trailing lines are matched directly, and only the small gaps left
between anchors go to ``SequenceMatcher``; a gap too large for it is one replacement.

The opcodes have ``SequenceMatcher.get_opcodes()``'s shape, so ``difflib``'s grouping
makes the unified diff.
"""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Iterator, Sequence

Opcode = tuple[str, int, int, int, int]
# Gaps whose product of lengths is below this go to SequenceMatcher (quadratic there).
_SMALL_GAP = 40_000


def _unique_anchors(a: Sequence[str], b: Sequence[str]) -> list[tuple[int, int]]:
    """(i, j) of lines unique in both, longest run increasing in both (patience sort)."""
    count_a: dict[str, int] = {}
    where_a: dict[str, int] = {}
    for i, line in enumerate(a):
        count_a[line] = count_a.get(line, 0) + 1
        where_a[line] = i
    count_b: dict[str, int] = {}
    where_b: dict[str, int] = {}
    for j, line in enumerate(b):
        if count_a.get(line) == 1:
            count_b[line] = count_b.get(line, 0) + 1
            where_b[line] = j
    pairs = sorted((where_a[line], j) for line, j in where_b.items() if count_b[line] == 1)
    # Longest increasing subsequence of j (pairs are sorted by i).
    tails: list[int] = []  # j of the last pair of the best run of each length
    tail_index: list[int] = []
    back: list[int] = [-1] * len(pairs)
    for n, (_, j) in enumerate(pairs):
        k = bisect.bisect_left(tails, j)
        if k == len(tails):
            tails.append(j)
            tail_index.append(n)
        else:
            tails[k] = j
            tail_index[k] = n
        back[n] = tail_index[k - 1] if k else -1
    run: list[tuple[int, int]] = []
    n = tail_index[-1] if tail_index else -1
    while n >= 0:
        run.append(pairs[n])
        n = back[n]
    run.reverse()
    return run


def _matches(a: Sequence[str], b: Sequence[str]) -> Iterator[tuple[int, int, int]]:
    """Matching blocks (i, j, size) of ``a`` and ``b``, in order."""
    # Work list instead of recursion: deep files must not hit the recursion limit.
    stack = [(0, len(a), 0, len(b))]
    out: list[tuple[int, int, int]] = []
    while stack:
        alo, ahi, blo, bhi = stack.pop()
        start = 0
        while alo + start < ahi and blo + start < bhi and a[alo + start] == b[blo + start]:
            start += 1
        if start:
            out.append((alo, blo, start))
            alo, blo = alo + start, blo + start
        end = 0
        while alo < ahi - end and blo < bhi - end and a[ahi - end - 1] == b[bhi - end - 1]:
            end += 1
        if end:
            out.append((ahi - end, bhi - end, end))
            ahi, bhi = ahi - end, bhi - end
        if alo == ahi or blo == bhi:
            continue
        anchors = _unique_anchors(a[alo:ahi], b[blo:bhi])
        if anchors:
            prev_a, prev_b = alo, blo
            for i, j in anchors:
                stack.append((prev_a, alo + i, prev_b, blo + j))
                out.append((alo + i, blo + j, 1))
                prev_a, prev_b = alo + i + 1, blo + j + 1
            stack.append((prev_a, ahi, prev_b, bhi))
        elif (ahi - alo) * (bhi - blo) <= _SMALL_GAP:
            matcher = difflib.SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
            for i, j, size in matcher.get_matching_blocks():
                if size:
                    out.append((alo + i, blo + j, size))
    out.sort()
    yield from out


def opcodes(a: Sequence[str], b: Sequence[str]) -> list[Opcode]:
    """``SequenceMatcher(None, a, b).get_opcodes()``'s shape, in near-linear time."""
    result: list[Opcode] = []
    i = j = 0
    for ai, bj, size in [*_merge(_matches(a, b)), (len(a), len(b), 0)]:
        if i < ai and j < bj:
            result.append(("replace", i, ai, j, bj))
        elif i < ai:
            result.append(("delete", i, ai, j, bj))
        elif j < bj:
            result.append(("insert", i, ai, j, bj))
        if size:
            result.append(("equal", ai, ai + size, bj, bj + size))
        i, j = ai + size, bj + size
    return result


def _merge(blocks: Iterator[tuple[int, int, int]]) -> Iterator[tuple[int, int, int]]:
    """Adjacent matching blocks joined into one."""
    current: tuple[int, int, int] | None = None
    for block in blocks:
        if current and current[0] + current[2] == block[0] and current[1] + current[2] == block[1]:
            current = (current[0], current[1], current[2] + block[2])
            continue
        if current:
            yield current
        current = block
    if current:
        yield current


def line_map(before: Sequence[str], after: Sequence[str]) -> dict[int, int | None]:
    """1-based line numbers of ``before`` mapped to ``after`` (None: the line went away)."""
    return map_from(opcodes(before, after))


def map_from(codes: list[Opcode]) -> dict[int, int | None]:
    """``line_map`` from opcodes already computed."""
    mapping: dict[int, int | None] = {}
    for tag, i1, i2, j1, j2 in codes:
        for offset, i in enumerate(range(i1, i2)):
            if tag == "equal" or (tag == "replace" and j2 > j1):
                mapping[i + 1] = min(j1 + offset, j2 - 1) + 1
            else:
                mapping[i + 1] = None
    return mapping


def unified(
    before: Sequence[str], after: Sequence[str], fromfile: str, tofile: str, context: int = 3
) -> Iterator[str]:
    """``difflib.unified_diff``'s lines (``before``/``after`` keep their line ends)."""
    codes = opcodes(before, after)
    if all(tag == "equal" for tag, *_ in codes):
        return
    yield f"--- {fromfile}\n"
    yield f"+++ {tofile}\n"
    for group in _groups(codes, context):
        first, last = group[0], group[-1]
        yield f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@\n"
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                yield from _lines(" ", before[i1:i2])
                continue
            if tag == "replace" and i2 - i1 == j2 - j1:
                # Line for line: each pair is its own change, so a long run of one-line
                # fixes can be shown in part (records.bounded_diff cuts between pairs).
                for old, new in zip(before[i1:i2], after[j1:j2], strict=True):
                    yield from _lines("-", [old])
                    yield from _lines("+", [new])
                continue
            if tag in ("replace", "delete"):
                yield from _lines("-", before[i1:i2])
            if tag in ("replace", "insert"):
                yield from _lines("+", after[j1:j2])


def _lines(mark: str, lines: Sequence[str]) -> Iterator[str]:
    """Diff lines; a last line without a newline gets git's marker, so patches apply."""
    for line in lines:
        if line.endswith("\n"):
            yield mark + line
        else:
            yield f"{mark}{line}\n\\ No newline at end of file\n"


def _groups(codes: list[Opcode], n: int) -> Iterator[list[Opcode]]:
    """``SequenceMatcher.get_grouped_opcodes`` over given opcodes."""
    matcher = difflib.SequenceMatcher(None, "", "")
    matcher.opcodes = codes  # type: ignore[attr-defined]
    yield from matcher.get_grouped_opcodes(n)


def _range(start: int, stop: int) -> str:
    """A unified diff hunk range, as difflib writes it."""
    beginning = start + 1
    length = stop - start
    if length == 1:
        return f"{beginning}"
    if not length:
        beginning -= 1
    return f"{beginning},{length}"
