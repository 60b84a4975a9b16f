"""Masking secrets in what a fix run shows (fix records, dry-run diffs).

A secret is masked inside the string literal that holds it, and only there, the same
way on both sides of a diff: everything else stays byte for byte, so a dry-run diff
still applies with ``git apply`` (to the tree, or to a copy masked alike).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from devskyy.agents.codecheck.security import HIDDEN, LONG_SECRET, detect_secrets

# One string literal on one line: optional prefix, then a quoted run (escapes allowed).
_LITERAL = re.compile(r"""[rRbBuUfF]{0,2}(["'])(?:\\.|(?!\1)[^\\\n])*\1""")


def _mask_line(line: str, values: Sequence[str], flagged: Collection[str]) -> str:
    """``line`` with each secret value masked inside the string literal that holds it.

    On a line detect-secrets flagged (``flagged``), the value is masked inside its
    literal (or, outside any literal, such as the inner line of a triple-quoted string,
    as a whole word). On other lines only a value of ``LONG_SECRET`` characters or more
    is masked, as a whole word: that is the secret itself, copied. Everything else stays
    byte for byte as it was: a short value such as ``abc`` is never replaced inside
    unrelated code (``import abc``).
    """
    present = [v for v in values if v in line]
    if not present:
        return line
    body = line.rstrip("\r\n")
    on_flagged = body in flagged or body[1:] in flagged  # a diff line has a one-char mark
    out: list[str] = []
    position = 0
    for match in _LITERAL.finditer(line):
        start, end = match.span()
        literal = line[start:end]
        if any(v in literal and (on_flagged or len(v) >= LONG_SECRET) for v in present):
            out += [line[position:start], _replace(literal, present)]
            position = end
    out.append(line[position:])
    masked = "".join(out)
    for value in (v for v in present if v in masked):
        if on_flagged or len(value) >= LONG_SECRET:
            masked = re.sub(rf"(?<![\w]){re.escape(value)}(?![\w])", HIDDEN, masked)
    return masked


def _replace(literal: str, values: Sequence[str]) -> str:
    for value in sorted(values, key=len, reverse=True):
        literal = literal.replace(value, HIDDEN)
    return literal


@dataclass(frozen=True)
class Secrets:
    """Secret values detect-secrets found, and the lines it found them on."""

    values: frozenset[str] = frozenset()
    lines: frozenset[str] = frozenset()


def redact(text: str, secrets: Secrets | Collection[str]) -> str:
    """``text`` with every secret masked inside its literal, line by line (the same line
    always masks the same way, so both sides of a diff agree and it still applies to a
    copy masked alike)."""
    found = secrets if isinstance(secrets, Secrets) else Secrets(frozenset(secrets))
    if not found.values or not text:
        return text
    ordered = sorted(found.values, key=len, reverse=True)
    if not any(v in text for v in ordered):
        return text
    return "".join(
        _mask_line(line, ordered, found.lines) for line in text.splitlines(keepends=True)
    )


def secrets_in_lines(name: str, lines: Collection[str]) -> Secrets:
    """What detect-secrets flags in ``lines``, read as lines of a file named ``name`` (its
    suffix picks the plugins' rules): linear in what is shown, not in the file's size."""
    shown = sorted({line for line in lines if line.strip()})
    if not shown:
        return Secrets()
    values: set[str] = set()
    flagged: set[str] = set()
    with detect_secrets() as scan_file, tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / Path(name).name
        copy.write_text("\n".join(shown) + "\n", encoding="utf-8")
        for secret in scan_file(str(copy)):
            if secret.secret_value:
                values.add(secret.secret_value)
                flagged.add(shown[int(secret.line_number) - 1])
    return Secrets(frozenset(values), frozenset(flagged))
