"""Which files a scan covers, and the path safety rules of the fixer.

``walk`` lists the files under a root the way a developer expects: it honours every
``.gitignore`` at or below the root (with ``pathspec``'s git semantics, each file relative
to its own folder) and always skips version-control folders, virtualenvs (any folder with
a ``pyvenv.cfg``, plus ``.venv``/``venv``), caches, build output and devskyy's own state.
``.gitignore`` files above the root are not read: the root is the project being scanned.

``resolve_inside`` is the fixer's guard: a path is used only if, with every symlink
resolved, it is still inside the root.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pathspec

SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".hypothesis",
        ".tox",
        ".nox",
        ".eggs",
        ".devskyy",
        "node_modules",
        "site-packages",
        "build",
        "dist",
        "htmlcov",
    }
)
PYTHON_SUFFIXES = (".py", ".pyi")


class PathEscape(ValueError):
    """A path resolves outside the root it must stay in."""


@dataclass(frozen=True)
class _Ignore:
    base: str  # POSIX path of the .gitignore's folder relative to the root ("" at the root)
    spec: pathspec.GitIgnoreSpec

    def matches(self, rel: str, is_dir: bool) -> bool:
        if self.base:
            if not rel.startswith(self.base + "/"):
                return False
            rel = rel[len(self.base) + 1 :]
        return self.spec.match_file(rel + "/" if is_dir else rel)


def _skip_dir(path: Path, name: str) -> bool:
    return name in SKIP_DIRS or name.endswith(".egg-info") or (path / "pyvenv.cfg").is_file()


def _read_gitignore(folder: Path, base: str) -> _Ignore | None:
    source = folder / ".gitignore"
    if not source.is_file():
        return None
    lines = source.read_text(encoding="utf-8", errors="replace").splitlines()
    return _Ignore(base, pathspec.GitIgnoreSpec.from_lines(lines))


def walk(root: Path, suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """Files under ``root`` (sorted, absolute), filtered as the module docstring says.

    Symlinked folders are not followed, and symlinked files are listed only when they
    point inside the root, so a scan never reads outside it.
    """
    root = root.resolve()
    found: list[Path] = []
    ignores: list[_Ignore] = []
    for current, dirs, files in os.walk(root):
        here = Path(current)
        base = here.relative_to(root).as_posix()
        base = "" if base == "." else base
        ignores = [
            i for i in ignores if not i.base or base == i.base or base.startswith(i.base + "/")
        ]
        own = _read_gitignore(here, base)
        if own is not None:
            ignores.append(own)
        kept = []
        for name in sorted(dirs):
            rel = f"{base}/{name}" if base else name
            sub = here / name
            if sub.is_symlink() or _skip_dir(sub, name):
                continue
            if any(i.matches(rel, is_dir=True) for i in ignores):
                continue
            kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            if suffixes is not None and not name.endswith(suffixes):
                continue
            rel = f"{base}/{name}" if base else name
            if any(i.matches(rel, is_dir=False) for i in ignores):
                continue
            path = here / name
            if path.is_symlink() and not is_inside(root, path.resolve()):
                continue
            found.append(path)
    return found


def is_inside(root: Path, path: Path) -> bool:
    """True when ``path`` (already resolved) is ``root`` or below it."""
    return path == root or root in path.parents


def resolve_inside(root: Path, name: str | Path) -> Path:
    """The real path of ``name`` (relative to ``root`` or absolute), refusing escapes."""
    root = root.resolve()
    candidate = Path(name)
    if not candidate.is_absolute():
        candidate = root / candidate
    real = candidate.resolve()
    if not is_inside(root, real):
        raise PathEscape(f"{name} resolves to {real}, outside {root}")
    return real


def relative(root: Path, path: Path) -> str:
    """POSIX path of ``path`` relative to ``root`` (both resolved)."""
    return path.resolve().relative_to(root.resolve()).as_posix()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_hashes(root: Path, paths: Iterable[Path]) -> dict[str, str]:
    """``relative path -> sha256`` of each file, so the fixer can tell what changed since."""
    return {relative(root, p): sha256_bytes(p.read_bytes()) for p in paths}
