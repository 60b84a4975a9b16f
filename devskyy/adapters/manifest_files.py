"""Reading a manifest tree: every ``*.yaml`` / ``*.yml`` file below a path, size-capped.

``ManifestFiles`` is the seam (a Protocol); ``DiskManifestFiles`` reads the real file
system and ``MemoryManifestFiles`` is its in-memory twin for tests. Both return the
files sorted by their display name, each with its bytes or the reason it could not be
read (too large, unreadable), so that one bad file never hides the others' problems.

Display names are relative to the current directory when the file lies below it (that
is how ``validate`` prints them), else the path as given. Hidden folders (``.git``,
``.devskyy``) and hidden files are skipped (an editor's lock or draft, such as Emacs's
``.#scanner.yaml``, a dangling symbolic link while the buffer is modified, must not
break ``validate`` or the watch daemon). A hidden file named explicitly is read.

Nothing else is skipped in silence: a folder that cannot be listed (permissions, removed
mid-walk) and a symbolic link to a folder (not followed: no loops, no escaping the tree)
come back as entries with an error, like an unreadable file. A tree read in part must never
look like a smaller valid tree, or ``apply --prune`` would delete what it could not see.
``DiskManifestFiles.scan_folder`` is the one place that lists a folder, so tests can make
one fail even when they run as root (for whom ``chmod 000`` denies nothing).
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
        try:
            mode = os.stat(base).st_mode
        except FileNotFoundError:
            raise ManifestPathError(f"{root}: no such file or directory") from None
        except OSError as exc:
            # A parent that cannot be searched: say so, never "no manifests".
            raise ManifestPathError(f"{root}: {_cannot('path', exc)}") from None
        shown = self._display_root(base, given)
        if stat.S_ISREG(mode):
            return [_read_one(str(base), shown, max_bytes)]
        if not stat.S_ISDIR(mode):
            raise ManifestPathError(f"{root}: not a file or directory")
        prefix = "" if shown == "." else shown.rstrip("/") + "/"
        start = len(str(base)) + 1
        out: list[ManifestFile] = []
        pending = [str(base)]  # an explicit stack: depth is the tree's, not the interpreter's
        while pending:
            folder = pending.pop()
            relative = folder[start:].replace(os.sep, "/")
            here = (prefix + relative) if relative else (shown if shown != "." else ".")
            try:
                entries = self.scan_folder(folder)
            except OSError as exc:
                out.append(ManifestFile(here, None, _cannot("folder", exc)))
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                name = prefix + entry.path[start:].replace(os.sep, "/")
                if _is_folder(entry):
                    if entry.is_symlink():
                        out.append(ManifestFile(name, None, _SYMLINKED_FOLDER))
                    else:
                        pending.append(entry.path)
                elif _is_manifest(entry.name):
                    out.append(_read_one(entry.path, name, max_bytes))
        return sorted(out, key=lambda f: f.name)

    def scan_folder(self, folder: str) -> list[os.DirEntry[str]]:
        """The entries of one folder; raises ``OSError`` when it cannot be listed."""
        with os.scandir(folder) as entries:
            return list(entries)


_SYMLINKED_FOLDER = (
    "symbolic link to a folder: not followed (put the manifests inside the tree, "
    "or name the linked folder itself)"
)


def _cannot(what: str, exc: OSError) -> str:
    return f"cannot read {what}: {exc.strerror or type(exc).__name__}"


def _is_folder(entry: os.DirEntry[str]) -> bool:
    """A folder, or a link to one; a dangling link or a vanished entry is not."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _read_one(path: str, name: str, max_bytes: int) -> ManifestFile:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            # A FIFO or device would block or never end: refuse before opening.
            return ManifestFile(name, None, "cannot read file: not a regular file")
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        return ManifestFile(name, None, _cannot("file", exc))
    if len(data) > max_bytes:
        return ManifestFile(name, None, _too_large(max_bytes))
    return ManifestFile(name, data)


class MemoryManifestFiles:
    """The in-memory twin: a mapping of POSIX relative path to bytes (or an OSError)."""

    def __init__(self, files: dict[str, bytes | OSError]) -> None:
        """``files``: path -> bytes or the OSError reading it raises; a key ending in
        ``/`` with an OSError is a folder that cannot be listed."""
        self._folders = {
            PurePosixPath(k).as_posix(): v
            for k, v in files.items()
            if k.endswith("/") and isinstance(v, OSError)
        }
        self._files = {
            PurePosixPath(k).as_posix(): v for k, v in files.items() if not k.endswith("/")
        }

    def read_tree(self, root: str, max_bytes: int = DEFAULT_MAX_BYTES) -> list[ManifestFile]:
        prefix = PurePosixPath(root).as_posix()
        if prefix in self._files:
            selected = [prefix]
        else:
            below = "" if prefix == "." else prefix.rstrip("/") + "/"
            selected = [k for k in self._files if k.startswith(below)]
            selected += [k for k in self._folders if k.startswith(below) or k == prefix]
            if not selected:
                raise ManifestPathError(f"{root}: no such file or directory")
        out: list[ManifestFile] = []
        unreadable = [k for k in selected if k in self._folders]
        for name in sorted(selected):
            if name in self._folders:
                out.append(ManifestFile(name, None, _cannot("folder", self._folders[name])))
                continue
            if any(name.startswith(folder + "/") for folder in unreadable):
                continue  # inside a folder that cannot be listed
            if not _is_manifest(name) and name != prefix:
                continue
            parts = PurePosixPath(name).parts
            if name != prefix and any(part.startswith(".") for part in parts):
                continue
            value = self._files[name]
            if isinstance(value, OSError):
                out.append(ManifestFile(name, None, _cannot("file", value)))
            elif len(value) > max_bytes:
                out.append(ManifestFile(name, None, _too_large(max_bytes)))
            else:
                out.append(ManifestFile(name, value))
        return out
