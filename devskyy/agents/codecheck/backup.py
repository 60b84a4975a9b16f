"""Fixer backups: the original bytes of every file a fix run changed, restorable.

One folder per fix run, ``<state dir>/backups/<backup id>/``, holding ``manifest.json``
(the root, and each file's relative path, sha256, size and mode, plus ``fixed_sha256``,
the sha256 the fix wrote) and ``files/<path>``.
The folder must lie outside the scanned tree, or inside a folder the walker always
skips (such as ``.devskyy``), so that a later scan or fix never sees it. Restoring
writes every original byte and mode back and checks each file's sha256. Like
``git checkout``, it refuses to overwrite a file changed since the fix (its content is
neither what the fix wrote nor the original) unless ``force`` is given.

Every file is written and read through ``devskyy.adapters.safe_files`` (no symbolic link
is ever followed below the state dir or the fixed root). Inside a workflow step the
folder is named by run and step and its manifest records both, written and synced before
the fix's first write: a crash mid-fix leaves a backup ``devskyy restore RUN_ID`` finds
(``of_run``), and a re-run of the step first puts back what the crashed attempt had
already written (``undo_partial``), then reuses the same folder.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from devskyy.adapters import failpoints, safe_files
from devskyy.agents.codecheck.files import SKIP_DIRS, is_inside, sha256_bytes
from devskyy.runtime.step_context import current_step

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class BackupError(ValueError):
    """A backup cannot be made or restored as asked."""


@dataclass(frozen=True)
class Restored:
    """What a restore wrote back."""

    backup_path: str
    root: str
    files: list[str]


def check_location(backup_dir: Path, root: Path) -> None:
    """Refuse a backup folder that a scan of ``root`` would walk into."""
    real, root = backup_dir.resolve(), root.resolve()
    if is_inside(root, real):
        parts = real.relative_to(root).parts
        if not any(p in SKIP_DIRS for p in parts):
            raise BackupError(
                f"backup folder {real} is inside the scanned tree {root}; "
                "use a state dir outside it (or under .devskyy)"
            )


def _anchor(backup_dir: Path) -> tuple[Path, PurePosixPath]:
    """The trusted folder a backup is written under (the state dir: the folder's
    grandparent, created if missing) and the backup folder relative to it."""
    absolute = backup_dir.absolute()
    anchor = absolute.parent.parent
    anchor.mkdir(parents=True, exist_ok=True)
    return anchor, PurePosixPath(absolute.parent.name, absolute.name)


def create(
    backup_dir: Path,
    root: Path,
    originals: Mapping[str, bytes],
    created: float,
    fixed: Mapping[str, bytes] | None = None,
    *,
    run: Mapping[str, str] | None = None,
) -> Path:
    """``_create``; a refused write (a link in the state dir) is a ``BackupError``."""
    try:
        return _create(backup_dir, root, originals, created, fixed, run=run)
    except safe_files.UnsafeWrite as exc:
        raise BackupError(f"refused to write the fixer backup: {exc}") from None


def _create(
    backup_dir: Path,
    root: Path,
    originals: Mapping[str, bytes],
    created: float,
    fixed: Mapping[str, bytes] | None = None,
    *,
    run: Mapping[str, str] | None = None,
) -> Path:
    """Write ``originals`` (relative path -> bytes) into the backup folder; ``fixed``
    (relative path -> the bytes the fix writes) lets ``restore`` see later edits.

    ``run`` ({"run_id", "step"}; default: the workflow step being run, if any) is recorded
    in the manifest, so ``devskyy restore RUN_ID`` finds the backup even when the run
    store never recorded the step's output (a crash mid-fix). A folder that already holds
    a backup of the same root (an earlier attempt of the same step) is reused: the
    originals it holds stay (they are the files before any attempt wrote), the new ones
    are added. The manifest is written and synced last, before the caller's first write.
    """
    check_location(backup_dir, root)
    anchor, base = _anchor(backup_dir)
    entries: dict[str, dict[str, Any]] = {}
    previous = _previous(backup_dir, root)
    if previous is not None:
        entries = {str(e["path"]): e for e in previous["files"]}
        created = float(previous.get("created", created))
    elif backup_dir.exists() and any(backup_dir.iterdir()) and not _is_partial(backup_dir):
        raise BackupError(f"backup folder {backup_dir} already exists")
    for rel, data in sorted(originals.items()):
        if rel in entries:
            continue
        target = base / "files" / PurePosixPath(rel)
        if ".." in PurePosixPath(rel).parts or PurePosixPath(rel).is_absolute():
            raise BackupError(f"{rel} escapes the backup folder")
        safe_files.write_bytes(
            anchor, target, data, mode=0o600, make_parents=True, folder_mode=0o700
        )
        mode = safe_files.file_mode(root, rel)
        entries[rel] = {
            "path": rel,
            "sha256": sha256_bytes(data),
            "size": len(data),
            "mode": mode if mode is not None else 0o644,
        }
    for rel, data in (fixed or {}).items():
        if rel in entries:
            entries[rel]["fixed_sha256"] = sha256_bytes(data)
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "root": str(root.resolve()),
        "created": created,
        "files": [entries[k] for k in sorted(entries)],
    }
    step = current_step()
    if run is None and step is not None:
        run = {"run_id": step.run_id, "step": step.step}
    if run:
        manifest["run"] = dict(run)
    _write_manifest(anchor, base, manifest)
    failpoints.hit("backup.recorded")
    return backup_dir


def _write_manifest(anchor: Path, base: PurePosixPath, manifest: Mapping[str, Any]) -> None:
    text = json.dumps(manifest, indent=2) + "\n"
    safe_files.write_text(anchor, base / MANIFEST, text, mode=0o600, make_parents=True)


def _is_partial(backup_dir: Path) -> bool:
    """A folder an attempt was killed in before it wrote the manifest (only ``files/``)."""
    return {p.name for p in backup_dir.iterdir()} <= {"files"}


def _previous(backup_dir: Path, root: Path) -> dict[str, Any] | None:
    """The manifest an earlier attempt left in ``backup_dir`` (None: there is none)."""
    if not (backup_dir / MANIFEST).is_file():
        return None
    manifest = read_manifest(backup_dir)
    if Path(manifest["root"]) != root.resolve():
        raise BackupError(f"backup folder {backup_dir} already holds a backup of another root")
    return manifest


def forget(backup_dir: Path, files: Sequence[str]) -> None:
    """Drop ``files`` from a backup (the run could not write them after all)."""
    manifest = read_manifest(backup_dir)
    gone = set(files)
    manifest["files"] = [e for e in manifest["files"] if e["path"] not in gone]
    anchor, base = _anchor(backup_dir)
    try:
        _write_manifest(anchor, base, manifest)
        for rel in sorted(gone):
            safe_files.remove(anchor, base / "files" / rel)
    except safe_files.UnsafeWrite as exc:
        raise BackupError(f"refused to write the fixer backup: {exc}") from None


def undo_partial(backup_dir: Path) -> list[str]:
    """Put back the originals of files an interrupted attempt already fixed.

    A re-run of the same step then sees the tree its scan saw (the files' sha256 match
    again) and reuses this backup. Only files holding exactly what the fix wrote are
    touched; a file edited since is left alone (the re-run reports it changed).
    """
    if not (backup_dir / MANIFEST).is_file():
        return []
    manifest = read_manifest(backup_dir)
    root = Path(manifest["root"])
    anchor, base = _anchor(backup_dir)
    undone: list[str] = []
    for entry in manifest["files"]:
        rel = str(entry["path"])
        current = _current(root, rel)
        fixed = entry.get("fixed_sha256")
        if current is None or fixed in (None, entry["sha256"]) or sha256_bytes(current) != fixed:
            continue
        try:
            data = safe_files.read_bytes(anchor, base / "files" / rel)
            if sha256_bytes(data) != entry["sha256"]:
                raise BackupError(f"{rel}: the backup's copy does not match its sha256")
            safe_files.write_bytes(root, rel, data, mode=int(entry["mode"]))
        except safe_files.UnsafeWrite as exc:
            raise BackupError(f"refused to undo {rel}: {exc.reason}") from None
        undone.append(rel)
    return undone


def read_manifest(backup_dir: Path) -> dict[str, Any]:
    path = backup_dir / MANIFEST
    if not path.is_file():
        raise BackupError(f"{backup_dir} is not a devskyy fixer backup (no {MANIFEST})")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != FORMAT_VERSION:
        raise BackupError(f"{path}: unknown backup format {data.get('format')!r}")
    return data


def _current(root: Path, rel: str) -> bytes | None:
    """What ``root/rel`` holds now (None: absent); ``BackupError`` when it is a link."""
    try:
        return safe_files.read_bytes(root, rel)
    except FileNotFoundError:
        return None
    except safe_files.UnsafeWrite as exc:
        raise BackupError(f"refused to restore {rel}: {exc.reason}") from None


def _edited_since_fix(current: bytes | None, entry: Mapping[str, Any]) -> bool:
    """True when the file holds neither what the fix wrote nor the original."""
    fixed = entry.get("fixed_sha256")
    if fixed is None or current is None:
        return False
    return sha256_bytes(current) not in (fixed, entry["sha256"])


def restore(backup_dir: Path, *, force: bool = False) -> Restored:
    """Write every backed-up file back to its place, byte for byte, with its mode.

    Every file goes through ``safe_files``: a file or a folder on its way that is now a
    symbolic link is refused (``BackupError`` naming it) before anything is written.
    Raises ``BackupError`` naming the files changed since the fix, unless ``force``.
    """
    manifest = read_manifest(backup_dir)
    root = Path(manifest["root"])
    anchor, base = _anchor(backup_dir)
    plan: list[tuple[str, bytes, int]] = []
    edited: list[str] = []
    for entry in manifest["files"]:
        rel = str(entry["path"])
        try:
            safe_files.split(rel)
            data = safe_files.read_bytes(anchor, base / "files" / rel)
        except (safe_files.UnsafeWrite, FileNotFoundError):
            raise BackupError(f"{rel} escapes the backup or its root") from None
        if sha256_bytes(data) != entry["sha256"]:
            raise BackupError(
                f"{backup_dir / 'files' / rel}: content does not match the backup's sha256"
            )
        try:
            safe_files.check_writable(root, rel)
        except safe_files.UnsafeWrite as exc:
            raise BackupError(f"refused to restore {rel}: {exc.reason}") from None
        plan.append((rel, data, int(entry["mode"])))
        if not force and _edited_since_fix(_current(root, rel), entry):
            edited.append(rel)
    if edited:
        raise BackupError(
            f"{len(edited)} file(s) changed since the fix: {', '.join(edited)}; "
            "restoring would lose those changes (restore --force overwrites them)"
        )
    for rel, data, mode in plan:
        try:
            safe_files.write_bytes(root, rel, data, mode=mode, make_parents=True)
        except safe_files.UnsafeWrite as exc:
            raise BackupError(f"refused to restore {rel}: {exc.reason}") from None
    return Restored(
        str(backup_dir.resolve()), str(root), [str(e["path"]) for e in manifest["files"]]
    )


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def backups_dir(state_dir: Path) -> Path:
    """The folder under ``state_dir`` that holds every fix backup."""
    return state_dir / "backups"


def new_backup_dir(state_dir: Path, now: float, run_id: str | None = None) -> Path:
    """The backup folder of a fix: named by run and step inside a workflow step (so every
    attempt of that step, before or after a crash, uses the same folder), by ``run_id``
    when given, else a UTC timestamp + random."""
    step = current_step()
    if run_id:
        name = _safe_name(run_id)
    elif step is not None:
        name = _safe_name(f"{step.run_id}-{step.step}")
    else:
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
        name = f"fix-{stamp}-{secrets.token_hex(3)}"
    return backups_dir(state_dir) / name


def of_run(state_dir: Path, run_id: str) -> list[Path]:
    """The backups under ``state_dir`` whose manifest records run ``run_id`` (sorted).

    A fix step records its run in the manifest before its first write, so this finds
    the backup of a step killed before the run store recorded its output.
    """
    found: list[Path] = []
    folder = backups_dir(state_dir)
    for candidate in sorted(folder.iterdir()) if folder.is_dir() else []:
        try:
            manifest = read_manifest(candidate)
        except (BackupError, OSError, ValueError):
            continue
        run = manifest.get("run")
        if isinstance(run, dict) and run.get("run_id") == run_id:
            found.append(candidate)
    return found
