"""Reading a manifest tree: every ``*.yaml`` / ``*.yml`` file below a path, size-capped.

``ManifestFiles`` is the seam (a Protocol); ``DiskManifestFiles`` reads the real file
system and ``MemoryManifestFiles`` is its in-memory twin for tests. Both return the
files sorted by their display name, each with its bytes or the reason it could not be
read (too large, unreadable), so that one bad file never hides the others' problems.

Display names are relative to the current directory when the file lies below it (that
is how ``validate`` prints them), else the path as given. Hidden folders (``.git``,
``.devskyy``) and hidden files are skipped (an editor's lock or draft, such as Emacs's
``.#scanner.yaml``, a dangling symbolic link while the buffer is modified, must not
break ``validate`` or the watch daemon); symbolic links to folders are not followed.
A hidden file named explicitly is read.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

DEFAULT_MAX_BYTES = 1024 * 1024
SUFFIXES = (".yaml", ".yml")


class ManifestPathError(Exception):
    """The path to read does not exist or is neither a file nor a folder."""


@dataclass(frozen=True)
class ManifestFile:
    """One file of the tree: its display name and its bytes, or why they are missing."""

    name: str
    data: bytes | None
    error: str | None = None


class ManifestFiles(Protocol):
    """Where manifests come from."""

    def read_tree(self, root: str, max_bytes: int = DEFAULT_MAX_BYTES) -> list[ManifestFile]:
        """Every manifest file at or below ``root``, sorted by name.

        Raises ``ManifestPathError`` when ``root`` does not exist.
        """
        ...


def _too_large(max_bytes: int) -> str:
    return f"file is larger than the limit of {max_bytes} bytes"


def _is_manifest(name: str) -> bool:
    return name.endswith(SUFFIXES)


class DiskManifestFiles:
    """Manifests on the local file system."""

    def __init__(self, cwd: Path | None = None) -> None:
        self._cwd = cwd

    def _display_root(self, base: Path, given: Path) -> str:
        """How to print ``base``: relative to the current directory if below it."""
        cwd = os.path.abspath(self._cwd or Path.cwd())
        absolute = Path(os.path.abspath(base))
        try:
            return absolute.relative_to(cwd).as_posix()
        except ValueError:
            return given.as_posix()

    def read_tree(self, root: str, max_bytes: int = DEFAULT_MAX_BYTES) -> list[ManifestFile]:
        given = Path(root)
        base = given if given.is_absolute() else (self._cwd or Path.cwd()) / given
        if not base.exists():
            raise ManifestPathError(f"{root}: no such file or directory")
        shown = self._display_root(base, given)
        if base.is_file():
            return [_read_one(str(base), shown, max_bytes)]
        if not base.is_dir():
            raise ManifestPathError(f"{root}: not a file or directory")
        prefix = "" if shown == "." else shown.rstrip("/") + "/"
        start = len(str(base)) + 1
        out: list[ManifestFile] = []
        # os.walk does not follow symbolic links to folders (no loops, no escaping the tree).
        for folder, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for file in files:
                if _is_manifest(file) and not file.startswith("."):
                    full = os.path.join(folder, file)
                    name = prefix + full[start:].replace(os.sep, "/")
                    out.append(_read_one(full, name, max_bytes))
        return sorted(out, key=lambda f: f.name)


def _read_one(path: str, name: str, max_bytes: int) -> ManifestFile:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            # A FIFO or device would block or never end: refuse before opening.
            return ManifestFile(name, None, "cannot read file: not a regular file")
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return ManifestFile(name, None, f"cannot read file: {reason}")
    if len(data) > max_bytes:
        return ManifestFile(name, None, _too_large(max_bytes))
    return ManifestFile(name, data)


class MemoryManifestFiles:
    """The in-memory twin: a mapping of POSIX relative path to bytes (or an OSError)."""

    def __init__(self, files: dict[str, bytes | OSError]) -> None:
        self._files = {PurePosixPath(k).as_posix(): v for k, v in files.items()}

    def read_tree(self, root: str, max_bytes: int = DEFAULT_MAX_BYTES) -> list[ManifestFile]:
        prefix = PurePosixPath(root).as_posix()
        if prefix in self._files:
            selected = [prefix]
        else:
            below = "" if prefix == "." else prefix.rstrip("/") + "/"
            selected = [k for k in self._files if k.startswith(below)]
            if not selected:
                raise ManifestPathError(f"{root}: no such file or directory")
        out: list[ManifestFile] = []
        for name in sorted(selected):
            if not _is_manifest(name) and name != prefix:
                continue
            parts = PurePosixPath(name).parts
            if name != prefix and any(part.startswith(".") for part in parts):
                continue
            value = self._files[name]
            if isinstance(value, OSError):
                reason = value.strerror or type(value).__name__
                out.append(ManifestFile(name, None, f"cannot read file: {reason}"))
            elif len(value) > max_bytes:
                out.append(ManifestFile(name, None, _too_large(max_bytes)))
            else:
                out.append(ManifestFile(name, value))
        return out
