"""``Problem``: one finding about the manifests, located at ``file:line:column``.

Every error of loading and validation is one of these, printed as one line that a
person (or an editor's problem matcher) can act on::

    manifests/agents/x.yaml:12:5: spec.retry.maxAttempts: -1 is less than the minimum of 1

``path`` is the JSON path inside the document (``spec.steps[2].needs[0]``);
``<document>`` names a whole document and ``<file>`` a whole file (or the tree root).
Lines and columns are 1-based. Problems sort by file, then line, then column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

DOCUMENT = "<document>"
"""The path of a problem about a whole document (for example a missing ``kind``)."""

FILE = "<file>"
"""The path of a problem about a whole file or folder (unreadable, too large, absent)."""

_PLAIN_KEY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")

PathPart = str | int


def format_path(parts: tuple[PathPart, ...] | list[PathPart]) -> str:
    """``("spec", "steps", 2, "needs", 0)`` -> ``spec.steps[2].needs[0]``.

    Keys that are not plain identifiers are quoted (``labels["app.kubernetes.io/name"]``)
    so that the path stays unambiguous; the empty path is ``<document>``.
    """
    if not parts:
        return DOCUMENT
    out: list[str] = []
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _PLAIN_KEY.match(part):
            out.append(f".{part}" if out else part)
        else:
            quoted = part.replace("\\", "\\\\").replace('"', '\\"')
            out.append(f'["{quoted}"]')
    return "".join(out)


@dataclass(frozen=True, order=True)
class Problem:
    """One finding: where (file, 1-based line and column, JSON path) and what."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.path}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by ``validate -o json``."""
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
        }
