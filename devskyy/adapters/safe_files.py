"""Symlink-safe file writes: the one way devskyy writes a file into a folder it was given.

Every writer of the project (the fixer, its backups and ``restore``, the publisher,
``discover``) names an *allowed root* and a path relative to it. The root is the trust
anchor (configured by the operator, opened once); everything below it may belong to a
hostile repository, which can plant symbolic links and swap files for links at any time.
So a write here:

- opens every folder between the root and the file through directory descriptors with
  ``O_NOFOLLOW`` (``openat``): a folder that is, or becomes, a symbolic link fails the open
  instead of leading outside the root, so the file's parent is inside the root *at write
  time*, not only when a path was checked earlier;
- refuses a destination that is a symbolic link or not a regular file;
- writes to a temporary file created exclusively (``O_CREAT|O_EXCL|O_NOFOLLOW``, a random
  name, in the destination's folder, mode 0600 at birth), so a planted file or link with
  a guessable temporary name can never be written through;
- sets the mode with ``fchmod`` on that descriptor (never ``chmod`` through a path),
  ``fsync``s it, and renames it over the destination relative to the same folder
  descriptor, then ``fsync``s the folder. ``rename`` replaces a link that appeared at the
  last moment rather than writing through it.

A refusal is an ``UnsafeWrite`` naming the path *relative to the root* and the reason (no
absolute server paths). Reads of files devskyy wrote itself (``read_bytes``) follow the
same rules.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePath, PurePosixPath

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_TMP_SUFFIX = ".devskyy-tmp"
_NAME_KEEP = 180  # of the destination's name in the temporary name (NAME_MAX is 255)


class UnsafeWrite(ValueError):
    """A write (or read) was refused because it could leave its allowed root.

    ``path`` is relative to the root; the message never shows the root itself.
    """

    def __init__(self, path: str, reason: str, action: str = "write") -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"refused to {action} {path}: {reason}")


def split(rel: str | PurePath) -> list[str]:
    """The components of a relative path; ``UnsafeWrite`` for absolute, ``..`` or empty."""
    text = str(rel)
    if "\x00" in text:
        raise UnsafeWrite(text.replace("\x00", "\\0"), "the path contains a NUL byte")
    path = PurePosixPath(text)
    if path.is_absolute():
        raise UnsafeWrite(text, "the path is absolute, not relative to its root")
    parts = [p for p in path.parts if p != "."]
    if not parts or any(p == ".." for p in parts):
        raise UnsafeWrite(text, "the path must name a file below its root without '..'")
    return parts


def _refusal(parent_fd: int, name: str, shown: str, action: str) -> UnsafeWrite | None:
    """Why ``name`` in ``parent_fd`` cannot be used as a folder (None: it can, or is absent)."""
    try:
        info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        return UnsafeWrite(shown, f"the folder {name!r} on its way is a symbolic link", action)
    if not stat.S_ISDIR(info.st_mode):
        return UnsafeWrite(shown, f"{name!r} on its way is not a folder", action)
    return None


@contextlib.contextmanager
def open_folder(
    root: Path,
    parts: Sequence[str],
    *,
    create: bool = False,
    folder_mode: int = 0o755,
    shown: str | None = None,
    action: str = "write",
) -> Iterator[int]:
    """A descriptor of ``root/parts...``, every part opened without following links.

    With ``create``, missing folders are made (``folder_mode``, then umask). The
    descriptor is closed when the block ends. ``shown`` is the path a refusal names
    (default: the folder's), ``action`` what it says was refused.
    """
    shown = shown or "/".join(parts) or "."
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, folder_mode, dir_fd=fd)
                child = _open_child(fd, part, shown, action)
            except OSError as exc:
                if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                    raise
                raise _refusal(fd, part, shown, action) or exc from None
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _open_child(parent_fd: int, part: str, shown: str, action: str) -> int:
    try:
        return os.open(part, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        raise _refusal(parent_fd, part, shown, action) or exc from None


def _destination(parent_fd: int, name: str, shown: str) -> os.stat_result | None:
    """The destination's own stat (None when absent); refuses a link or a non-file."""
    try:
        info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeWrite(shown, "it is a symbolic link")
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeWrite(shown, "it is not a regular file")
    return info


def check_writable(root: Path, rel: str | PurePath) -> None:
    """Raise ``UnsafeWrite`` if a write of ``rel`` under ``root`` would be refused now.

    A pre-flight check (so a run can leave a refused file out of its plan and backup);
    ``write_bytes`` checks again at write time. A missing folder on the way is fine.
    """
    parts = split(rel)
    shown = "/".join(parts)
    try:
        with open_folder(root, parts[:-1], shown=shown) as fd:
            _destination(fd, parts[-1], shown)
    except FileNotFoundError:
        return


def anchor(folder: Path) -> tuple[Path, Path]:
    """The trusted root for writes into a folder a command line named, and the folder
    relative to it.

    The working directory when ``folder`` lies below it, so a folder of the working tree
    that is a symbolic link (a planted ``manifests -> /etc``) is refused; else ``folder``
    itself (created if missing), which the user named explicitly.
    """
    absolute = Path(os.path.abspath(folder))
    cwd = Path.cwd()
    if absolute.is_relative_to(cwd) and absolute != cwd:
        return cwd, absolute.relative_to(cwd)
    absolute.mkdir(parents=True, exist_ok=True)
    return absolute, Path()


def write_bytes(
    root: Path,
    rel: str | PurePath,
    data: bytes,
    *,
    mode: int | None = None,
    default_mode: int = 0o644,
    make_parents: bool = False,
    folder_mode: int = 0o755,
    sync: bool = True,
) -> None:
    """Replace (or create) ``root/rel`` with ``data``, atomically and without following links.

    The file gets ``mode`` when given, else the mode of the file it replaces, else
    ``default_mode``; missing folders are created only with ``make_parents``. Raises
    ``UnsafeWrite`` (nothing written) when a folder on the way or the destination is a
    symbolic link, or the destination is not a regular file.
    """
    parts = split(rel)
    shown, name = "/".join(parts), parts[-1]
    with open_folder(
        root, parts[:-1], create=make_parents, folder_mode=folder_mode, shown=shown
    ) as fd:
        existing = _destination(fd, name, shown)
        if mode is None:
            mode = stat.S_IMODE(existing.st_mode) if existing is not None else default_mode
        tmp = _write_temporary(fd, name, data, mode, sync)
        try:
            # Checked again just before the rename: a link planted since is refused. One
            # planted after this check is replaced by the rename, never written through.
            _destination(fd, name, shown)
            os.replace(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=fd)
            raise
        if sync:
            os.fsync(fd)


def write_text(
    root: Path,
    rel: str | PurePath,
    text: str,
    *,
    mode: int | None = None,
    default_mode: int = 0o644,
    make_parents: bool = False,
) -> None:
    """``write_bytes`` of ``text`` encoded as UTF-8."""
    write_bytes(
        root,
        rel,
        text.encode("utf-8"),
        mode=mode,
        default_mode=default_mode,
        make_parents=make_parents,
    )


def _write_temporary(folder_fd: int, name: str, data: bytes, mode: int, sync: bool) -> str:
    """A new temporary file in ``folder_fd`` holding ``data`` with ``mode``; its name."""
    for _ in range(16):
        tmp = f".{name[:_NAME_KEEP]}.{secrets.token_hex(8)}{_TMP_SUFFIX}"
        try:
            fd = os.open(tmp, _TMP_FLAGS, 0o600, dir_fd=folder_fd)
        except FileExistsError:
            continue
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fchmod(handle.fileno(), mode)
                if sync:
                    os.fsync(handle.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=folder_fd)
            raise
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary name", name)


def remove(root: Path, rel: str | PurePath) -> None:
    """Delete the file ``root/rel`` (a link is removed itself, never its target); absent
    is fine."""
    parts = split(rel)
    with contextlib.suppress(FileNotFoundError), open_folder(root, parts[:-1]) as folder:
        os.unlink(parts[-1], dir_fd=folder)


def make_folders(root: Path, rel: str | PurePath, *, folder_mode: int = 0o755) -> None:
    """Create ``root/rel`` and the folders on its way, refusing any symbolic link."""
    with open_folder(root, split(rel), create=True, folder_mode=folder_mode):
        pass


def read_bytes(root: Path, rel: str | PurePath) -> bytes:
    """The bytes of the regular file ``root/rel``, with no link followed on the way."""
    parts = split(rel)
    shown = "/".join(parts)
    with open_folder(root, parts[:-1], shown=shown, action="read") as folder:
        try:
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            fd = os.open(parts[-1], flags, dir_fd=folder)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise UnsafeWrite(shown, "it is a symbolic link", "read") from None
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise UnsafeWrite(shown, "it is not a regular file", "read")
            return handle.read()


def file_mode(root: Path, rel: str | PurePath) -> int | None:
    """The permission bits of the regular file ``root/rel`` (None when absent or not one)."""
    parts = split(rel)
    try:
        with open_folder(root, parts[:-1]) as folder:
            info = os.stat(parts[-1], dir_fd=folder, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError, UnsafeWrite):
        return None
    return stat.S_IMODE(info.st_mode) if stat.S_ISREG(info.st_mode) else None
