"""The folder of a SQLite store: take group and other access off it when it is the store's own.

devskyy creates a store's folder 0700, but devskyy 0.1.0 created it with the umask's mode
(often 0755), so other local users could list it. ``devskyy migrate`` calls
``make_store_folder_private`` after making the files 0600. Only a folder that is the
store's own is changed, never a folder the user keeps other things in (their home, a
project):

- a folder named ``.devskyy`` (the default store's folder; it also holds what agents keep
  beside the store, such as fixer backups);
- any other folder only while it holds nothing but the store's files: the database, its
  ``-wal``, ``-shm`` and ``-journal`` files, and the ``.before-<revision>`` copies
  ``migrate`` makes beside it (with their own side files).

The folder is opened without following a symbolic link; it is listed and changed through
that one descriptor, so the folder judged is the folder changed.
"""

from __future__ import annotations

import os
from pathlib import Path

STORE_FOLDER = ".devskyy"
_SIDE_FILES = ("-wal", "-shm", "-journal")


def is_store_file(name: str, database: str) -> bool:
    """Whether the entry ``name`` belongs to the SQLite store whose file is ``database``."""
    if name == database or name in {database + s for s in _SIDE_FILES}:
        return True
    return name.startswith(database + ".before-")


def make_store_folder_private(database: Path) -> bool:
    """Take group and other access off ``database``'s folder if it is the store's own.

    Returns whether the folder's mode changed. A folder that is a symbolic link, is not
    the store's own, or cannot be read or changed (another user's) is left as it is.
    """
    folder = database.absolute().parent
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False  # absent, not a folder, or a symbolic link
    try:
        if folder.name != STORE_FOLDER and not all(
            is_store_file(name, database.name) for name in os.listdir(fd)
        ):
            return False
        mode = os.fstat(fd).st_mode
        if not mode & 0o077:
            return False
        os.fchmod(fd, mode & 0o700)
        return True
    except OSError:
        return False  # not ours to change (owned by another user)
    finally:
        os.close(fd)
