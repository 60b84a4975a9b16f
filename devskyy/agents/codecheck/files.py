"""Which files a scan covers, and the path safety rules of the fixer.

``walk`` lists the files under a root the way a developer expects: it honours every
``.gitignore`` at or below the root (with ``pathspec``'s git semantics, each file relative
to its own folder) and always skips version-control folders, virtualenvs (any folder with
a ``pyvenv.cfg``, plus ``.venv``/``venv``), caches, build output and devskyy's own state.
``.gitignore`` files above the root are not read: the root is the project being scanned.

Files a scan cannot read are skipped *with a reason* (``walk_tree``): a symlink loop or
a dangling symlink, a FIFO, socket or device (opening a FIFO would block the scan
forever), a file without read permission, a folder that cannot be listed. One such file
never fails the scan of the rest.

``resolve_inside`` is the fixer's guard: a path is used only if, with every symlink
resolved, it is still inside the root.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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
NOTEBOOK_SUFFIX = ".ipynb"
SCAN_SUFFIXES = (*PYTHON_SUFFIXES, NOTEBOOK_SUFFIX)  # what ruff lints by default
_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe), not a regular file"),
    (stat.S_ISSOCK, "a socket, not a regular file"),
    (stat.S_ISCHR, "a character device, not a regular file"),
    (stat.S_ISBLK, "a block device, not a regular file"),
    (stat.S_ISDIR, "a folder"),
)


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
    if name in SKIP_DIRS or name.endswith(".egg-info"):
        return True
    try:
        return (path / "pyvenv.cfg").is_file()
    except OSError:  # a folder we may not look into: os.walk reports it
        return False


def _read_gitignore(folder: Path, base: str) -> _Ignore | None:
    source = folder / ".gitignore"
    try:
        if not source.is_file():
            return None
        lines = source.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    # pathspec on use (only a tree with a .gitignore): not on the way to the first step.
    import pathspec  # noqa: PLC0415

    return _Ignore(base, pathspec.GitIgnoreSpec.from_lines(lines))


@dataclass
class Walked:
    """What a walk found: readable files (sorted, absolute), and what it skipped, why."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)


def oserror_reason(exc: OSError | str) -> str:
    """A short, stable reason for a file that could not be read (same text from every tool)."""
    code = exc.errno if isinstance(exc, OSError) else None
    text = str(exc)
    if code == errno.ENOENT or "No such file" in text:
        return "the file vanished during the scan"
    if code in (errno.EACCES, errno.EPERM) or "ermission denied" in text:
        return "no permission to read it"
    if code == errno.ELOOP or "ymlink loop" in text or "too many levels" in text.lower():
        return "a symlink loop"
    return f"unreadable: {text.strip()[:200]}"


def _unreadable(path: Path, root: Path) -> str | None:
    """Why ``path`` cannot be scanned, or None (it is a readable regular file in ``root``).

    A symlink pointing outside the root is reported as the empty string: left out
    silently, as it is not part of the project.
    """
    try:
        if path.is_symlink():
            real = path.resolve(strict=True)
            if not is_inside(root, real):
                return ""
        mode = path.stat().st_mode
    except RuntimeError:  # Python 3.11 raises RuntimeError for a symlink loop
        return "a symlink loop"
    except FileNotFoundError:
        return "a dangling symlink" if path.is_symlink() else "the file vanished during the scan"
    except OSError as exc:
        return oserror_reason(exc)
    for test, reason in _KINDS:
        if test(mode):
            return reason
    try:
        # Open it (non-blocking, so nothing can hang): the only test of permission that
        # holds for every user, ACLs included.
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    except OSError as exc:
        return oserror_reason(exc)
    return None


def walk(root: Path, suffixes: tuple[str, ...] | None = None) -> list[Path]:
    """The readable files under ``root`` (see ``walk_tree``)."""
    return walk_tree(root, suffixes).files


def walk_tree(root: Path, suffixes: tuple[str, ...] | None = None) -> Walked:
    """Files under ``root`` (sorted, absolute), filtered as the module docstring says,
    and the files (or folders) skipped because they cannot be read.

    Symlinked folders are not followed, and symlinked files are listed only when they
    point inside the root, so a scan never reads outside it.
    """
    root = root.resolve()
    walked = Walked()
    found = walked.files
    ignores: list[_Ignore] = []

    def unlisted(exc: OSError) -> None:
        name = exc.filename if isinstance(exc.filename, str) else str(root)
        rel = Path(name).relative_to(root).as_posix() if Path(name) != root else "."
        walked.skipped.append((rel, f"folder not listed: {oserror_reason(exc)}"))

    for current, dirs, files in os.walk(root, onerror=unlisted):
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
            reason = _unreadable(path, root)
            if reason is None:
                found.append(path)
            elif reason:
                walked.skipped.append((rel, reason))
    walked.skipped.sort()
    return walked


def is_inside(root: Path, path: Path) -> bool:
    """True when ``path`` (already resolved) is ``root`` or below it."""
    return path == root or root in path.parents


def resolve_inside(root: Path, name: str | Path) -> Path:
    """The real path of ``name`` (relative to ``root`` or absolute), refusing escapes."""
    root = root.resolve()
    candidate = Path(name)
    if not candidate.is_absolute():
        candidate = root / candidate
    # realpath, not Path.resolve: a symlink loop must not raise here (Python 3.11 raises
    # RuntimeError); the walker already reported it, and a loop is no regular file.
    real = Path(os.path.realpath(candidate))
    if not is_inside(root, real):
        # Named relative to the root when below it: the run's output may reach an API
        # client, who must learn neither the server's folders nor where a link leads.
        shown = candidate.relative_to(root) if candidate.is_relative_to(root) else name
        raise PathEscape(f"{shown} leads outside the folder being fixed ('..' or a symbolic link)")
    return real


def relative(root: Path, path: Path) -> str:
    """POSIX path of ``path`` relative to ``root`` (both resolved)."""
    return Path(os.path.realpath(path)).relative_to(root.resolve()).as_posix()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_hashes(root: Path, paths: Iterable[Path]) -> dict[str, str]:
    """``relative path -> sha256`` of each file, so the fixer can tell what changed since
    (a file gone meanwhile has none: the fixer then refuses it)."""
    hashes: dict[str, str] = {}
    for path in paths:
        try:
            hashes[relative(root, path)] = sha256_bytes(path.read_bytes())
        except OSError:
            continue
    return hashes
