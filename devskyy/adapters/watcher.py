"""File-event hints from the manifest tree and agent sources (watchdog), as an asyncio queue.

The observer runs in its own thread; every relevant event is handed to the event loop
with ``call_soon_threadsafe``. Only ``*.yaml``/``*.yml`` under the manifest tree and
``*.py`` files explicitly watched (agent sources) count; editor swap files and
``.git`` are ignored. ``MemoryWatcher`` is the in-memory twin for tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

MANIFEST_SUFFIXES = (".yaml", ".yml")


class Watcher(Protocol):
    """Delivers changed paths; ``start`` begins watching, ``stop`` ends it."""

    queue: asyncio.Queue[str]

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def watch_files(self, files: Iterable[Path]) -> None: ...


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


class _Handler(FileSystemEventHandler):
    def __init__(self, owner: FsWatcher) -> None:
        self.owner = owner

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            path = raw.decode() if isinstance(raw, bytes) else raw
            if path and relevant(path, self.owner.root, self.owner.sources):
                self.owner.loop.call_soon_threadsafe(self.owner.queue.put_nowait, path)


class FsWatcher:
    """A watchdog observer on the manifest tree plus the folders of agent sources."""

    def __init__(self, root: Path, loop: asyncio.AbstractEventLoop) -> None:
        self.root = root.resolve()
        self.loop = loop
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.sources: frozenset[Path] = frozenset()
        self._observer = Observer()
        self._handler = _Handler(self)
        self._watched_dirs: set[Path] = set()

    def start(self) -> None:
        self._schedule(self.root, recursive=True)
        self._observer.start()

    def watch_files(self, files: Iterable[Path]) -> None:
        """Also report changes to these source files (agent modules)."""
        resolved = frozenset(f.resolve() for f in files)
        self.sources = resolved
        for folder in {f.parent for f in resolved}:
            self._schedule(folder, recursive=False)

    def _schedule(self, folder: Path, *, recursive: bool) -> None:
        if folder in self._watched_dirs or not folder.is_dir():
            return
        if recursive is False and any(folder.is_relative_to(d) for d in self._watched_dirs):
            return
        self._observer.schedule(self._handler, str(folder), recursive=recursive)
        self._watched_dirs.add(folder)

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)


class MemoryWatcher:
    """The in-memory twin: tests push paths with ``emit``."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.sources: frozenset[Path] = frozenset()
        self.started = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False

    def watch_files(self, files: Iterable[Path]) -> None:
        self.sources = frozenset(f.resolve() for f in files)

    def emit(self, path: str) -> None:
        self.queue.put_nowait(path)
