"""Confine scanner and fixer paths to the configured workspace roots (pure path checks).

Scanner and fixer requests name their paths directly; tasks and workflow runs reach the
same agents through parameters, so ``confine_params`` checks ``target_path`` (and
``target_files``) there too. A path is resolved against the first root when relative,
with every symlink followed (``Path.resolve(strict=True)``), and must then lie inside
one resolved root. ``..`` and links that lead out are refused with the reason; nothing
outside is ever touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


class OutsideWorkspace(ValueError):
    """The path is not inside any workspace root (the message says why)."""


def confine(path: str, roots: Sequence[Path]) -> Path:
    """The resolved path inside a root; ``OutsideWorkspace`` otherwise."""
    if not roots:
        raise OutsideWorkspace("no workspace roots are configured")
    if "\x00" in path:
        raise OutsideWorkspace("path contains a NUL byte")
    resolved_roots = [r.resolve() for r in roots]
    raw = Path(path)
    candidate = raw if raw.is_absolute() else resolved_roots[0] / raw
    try:
        real = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        raise OutsideWorkspace(f"path {path!r} does not exist in the workspace") from None
    for root in resolved_roots:
        if real == root or root in real.parents:
            return real
    via = (
        " (through '..' or a symbolic link)"
        if candidate.absolute() != real or ".." in raw.parts
        else ""
    )
    shown = ", ".join(str(r) for r in resolved_roots)
    raise OutsideWorkspace(f"path {path!r} is outside the workspace roots{via}: {shown}")


def confine_files(files: Sequence[str], roots: Sequence[Path]) -> list[str]:
    """Each target file confined (same rules); returns the resolved paths as text."""
    return [str(confine(f, roots)) for f in files]


PATH_PARAMS = ("target_path",)
"""Task and workflow parameters that name a folder the code agents work in."""


def confine_params(params: dict[str, Any], roots: Sequence[Path]) -> dict[str, Any]:
    """``params`` with each path parameter resolved inside a root (``OutsideWorkspace``)."""
    out = dict(params)
    for name in PATH_PARAMS:
        value = out.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise OutsideWorkspace(f"parameter {name!r} must be a path string")
        out[name] = str(confine(value, roots))
    files = out.get("target_files")
    if isinstance(files, list):
        base = Path(out.get("target_path") or roots[0])
        out["target_files"] = [
            str(confine(f if Path(f).is_absolute() else str(base / f), roots))
            for f in files
            if isinstance(f, str)
        ]
    return out
