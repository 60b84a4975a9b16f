"""File-event hints from the manifest tree and agent sources (watchdog), as an asyncio queue.

The observer runs in its own thread; every relevant event is handed to the event loop
with ``call_soon_threadsafe``. Only ``*.yaml``/``*.yml`` under the manifest tree and
``*.py`` files explicitly watched (agent sources) count; editor swap files and
``.git`` are ignored. ``MemoryWatcher`` is the in-memory twin for tests.

The watcher follows the tree, not an inode. Deploy tools replace folders rather than edit
them: ``rm -rf manifests && git checkout``, a branch switch, ``mv new manifests``, or an
atomic symlink swap (``ln -s releases/v2 tmp && mv -T tmp current``). An inotify watch stays
on the old folder and would go silent for good. So besides the tree (recursively), every
parent named in the given path is watched (one level each): an event on the path or any of
its parents makes the watcher compare what the path now points at (device and inode of each
component, following links) with what it armed; if that changed, every watch is dropped and
armed again on the new folders, the change is logged, and a hint is queued so that the next
pass reads the new tree within the debounce window. A path that disappears is logged once
and watched for from its parent.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

MANIFEST_SUFFIXES = (".yaml", ".yml")

log = logging.getLogger("devskyy.watch")

Identity = tuple[tuple[int, int] | None, ...]
"""(device, inode) of the path and each watched parent, following links; None if missing."""


class Watcher(Protocol):
    """Delivers changed paths; ``start`` begins watching, ``stop`` ends it."""

    queue: asyncio.Queue[str]

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def watch_files(self, files: Iterable[Path]) -> None: ...

    def check(self) -> None:
        """Re-arm if the watched folders were replaced (the daemon asks before each pass)."""
        ...


def relevant(path: str, manifest_root: Path, sources: frozenset[Path]) -> bool:
    """True for a manifest file under the root or a watched agent source file."""
    p = Path(path)
    if any(part == ".git" for part in p.parts) or p.name.startswith(".#"):
        return False
    if p.suffix in MANIFEST_SUFFIXES:
        try:
            p.resolve().relative_to(manifest_root)
        except ValueError:
            return False
        return True
    return p.suffix == ".py" and p.resolve() in sources


def parents_to_watch(given: Path, cwd: Path) -> list[Path]:
    """The parents of ``given`` (absolute, unresolved) that the watcher also watches.

    Up to the current directory when ``given`` lies below it (the parents a relative path
    names), else up to the top-level folder (never ``/`` itself).
    """
    out: list[Path] = []
    for parent in given.parents:
        if parent == parent.parent:  # the file-system root
            break
        out.append(parent)
        if parent == cwd:
            break
    return out


def _identity(paths: list[Path]) -> Identity:
    found: list[tuple[int, int] | None] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            found.append(None)
        else:
            found.append((st.st_dev, st.st_ino))
    return tuple(found)


class _Handler(FileSystemEventHandler):
    def __init__(self, owner: FsWatcher) -> None:
        self.owner = owner

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        owner = self.owner
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            path = raw.decode() if isinstance(raw, bytes) else raw
            if not path:
                continue
            if path in owner.components:
                # The tree itself, or a parent, was created, removed, moved or swapped.
                owner.loop.call_soon_threadsafe(owner.check)
            elif relevant(path, owner.root, owner.sources):
                owner.loop.call_soon_threadsafe(owner.queue.put_nowait, path)


class FsWatcher:
    """A watchdog observer on the manifest tree, its parents and the agent source folders."""

    def __init__(self, root: Path, loop: asyncio.AbstractEventLoop) -> None:
        self.given = Path(os.path.abspath(root))
        self.parents = parents_to_watch(self.given, Path(os.path.abspath(Path.cwd())))
        self.root = self.given.resolve()
        self.loop = loop
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.sources: frozenset[Path] = frozenset()
        self.components: frozenset[str] = frozenset()
        self.rearmed = 0
        self._observer = Observer()
        self._handler = _Handler(self)
        self._watches: dict[tuple[Path, bool], ObservedWatch] = {}
        self._identity: Identity = ()
        self._pins: list[int] = []
        self._started = False

    def start(self) -> None:
        self._arm()
        self._observer.start()
        self._started = True

    def watch_files(self, files: Iterable[Path]) -> None:
        """Also report changes to these source files (agent modules)."""
        resolved = frozenset(f.resolve() for f in files)
        self.sources = resolved
        for folder in {f.parent for f in resolved}:
            self._schedule(folder, recursive=False)

    def check(self) -> None:
        """Arm again if the path (or a parent) now points at other folders; cheap otherwise."""
        before = self._identity
        for _ in range(10):  # until what was armed is what is there (a swap may be mid-way)
            if _identity(self._paths()) == self._identity:
                break
            self._arm()
        if self._identity == before:
            return
        if self._identity[0] is None:
            if before[0] is not None:
                log.warning(
                    "manifest folder is gone; waiting for it to come back",
                    extra={"fields": {"path": str(self.given)}},
                )
            return
        self.rearmed += 1
        log.warning(
            "manifest folder replaced; watching the new one",
            extra={"fields": {"path": str(self.given), "folder": str(self.root)}},
        )
        # Files written before the new watch existed sent no event: read the whole tree.
        self.queue.put_nowait(str(self.given))

    def _paths(self) -> list[Path]:
        return [self.given, *self.parents]

    def _arm(self) -> None:
        """Watch the path's current folders; a folder that did not change keeps its watch.

        Keeping unchanged watches matters: dropping the parent's watch while a swap is
        half done would lose the event of its second half.
        """
        old_identity, old_root = self._identity, self.root
        old_pins = self._pins
        self._pins = []
        # Hold each folder open while it is watched: a removed folder's inode number then
        # cannot be given to its replacement, so (device, inode) tells them apart.
        for folder in self._paths():
            try:
                self._pins.append(os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
            except OSError:
                continue
        for fd in old_pins:
            os.close(fd)
        self._identity = _identity(self._paths())
        self.root = self.given.resolve()

        def same(index: int) -> bool:
            return (
                index < len(old_identity)
                and old_identity[index] is not None
                and old_identity[index] == self._identity[index]
            )

        keep: set[tuple[Path, bool]] = {(f.parent, False) for f in self.sources}
        if same(0) and self.root == old_root:
            keep.add((self.root, True))
        keep.update((p, False) for i, p in enumerate(self.parents, start=1) if same(i))
        for key in [k for k in self._watches if k not in keep]:
            self._observer.unschedule(self._watches.pop(key))
        # Paths whose events mean "look again": the path, its target, and each parent.
        names = {str(self.given), str(self.root), *(str(p) for p in self.parents)}
        self.components = frozenset(names)
        self._schedule(self.root, recursive=True)
        for parent in self.parents:
            self._schedule(parent, recursive=False)
        for folder in {f.parent for f in self.sources}:
            self._schedule(folder, recursive=False)

    def _schedule(self, folder: Path, *, recursive: bool) -> None:
        if (folder, recursive) in self._watches or not folder.is_dir():
            return
        if recursive is False and folder.is_relative_to(self.root):
            return  # inside the tree: already seen by its recursive watch
        try:
            watch = self._observer.schedule(self._handler, str(folder), recursive=recursive)
        except OSError as exc:
            # inotify limits, a folder removed meanwhile: the periodic resync still runs.
            log.error(
                "cannot watch folder; changes there wait for the periodic resync",
                extra={"fields": {"folder": str(folder), "error": str(exc)}},
            )
            return
        self._watches[(folder, recursive)] = watch

    def _unpin(self) -> None:
        for fd in self._pins:
            os.close(fd)
        self._pins.clear()

    def stop(self) -> None:
        if self._started:
            self._observer.stop()
            self._observer.join(timeout=5)
        self._unpin()


class MemoryWatcher:
    """The in-memory twin: tests push paths with ``emit``."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.sources: frozenset[Path] = frozenset()
        self.started = False
        self.checks = 0

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False

    def watch_files(self, files: Iterable[Path]) -> None:
        self.sources = frozenset(f.resolve() for f in files)

    def check(self) -> None:
        self.checks += 1

    def emit(self, path: str) -> None:
        self.queue.put_nowait(path)
