"""Fixer backups: the original bytes of every file a fix run changed, restorable.

One folder per fix run, ``<state dir>/backups/<backup id>/``, holding ``manifest.json``
(the root, and each file's relative path, sha256, size and mode, plus ``fixed_sha256``,
the sha256 the fix wrote) and ``files/<path>``.
The folder must lie outside the scanned tree, or inside a folder the walker always
skips (such as ``.devskyy``), so that a later scan or fix never sees it. Restoring
writes every original byte and mode back and checks each file's sha256. Like
``git checkout``, it refuses to overwrite a file changed since the fix (its content is
neither what the fix wrote nor the original) unless ``force`` is given.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devskyy.agents.codecheck.files import SKIP_DIRS, PathEscape, is_inside, sha256_bytes

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


def create(
    backup_dir: Path,
    root: Path,
    originals: Mapping[str, bytes],
    created: float,
    fixed: Mapping[str, bytes] | None = None,
) -> Path:
    """Write ``originals`` (relative path -> bytes) into a new backup folder; ``fixed``
    (relative path -> the bytes the fix writes) lets ``restore`` see later edits."""
    check_location(backup_dir, root)
    if backup_dir.exists():
        raise BackupError(f"backup folder {backup_dir} already exists")
    files_dir = backup_dir / "files"
    entries: list[dict[str, Any]] = []
    for rel, data in sorted(originals.items()):
        source = root / rel
        target = files_dir / rel
        if not is_inside(files_dir.resolve(), target.resolve()):
            raise PathEscape(f"{rel} escapes the backup folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        mode = stat.S_IMODE(source.stat().st_mode) if source.exists() else 0o644
        entry: dict[str, Any] = {
            "path": rel,
            "sha256": sha256_bytes(data),
            "size": len(data),
            "mode": mode,
        }
        if fixed is not None and rel in fixed:
            entry["fixed_sha256"] = sha256_bytes(fixed[rel])
        entries.append(entry)
    manifest = {
        "format": FORMAT_VERSION,
        "root": str(root.resolve()),
        "created": created,
        "files": entries,
    }
    (backup_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return backup_dir


def read_manifest(backup_dir: Path) -> dict[str, Any]:
    path = backup_dir / MANIFEST
    if not path.is_file():
        raise BackupError(f"{backup_dir} is not a devskyy fixer backup (no {MANIFEST})")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != FORMAT_VERSION:
        raise BackupError(f"{path}: unknown backup format {data.get('format')!r}")
    return data


def _edited_since_fix(target: Path, entry: Mapping[str, Any]) -> bool:
    """True when ``target`` holds neither what the fix wrote nor the original."""
    fixed = entry.get("fixed_sha256")
    if fixed is None or not target.is_file():
        return False
    return sha256_bytes(target.read_bytes()) not in (fixed, entry["sha256"])


def restore(backup_dir: Path, *, force: bool = False) -> Restored:
    """Write every backed-up file back to its place, byte for byte, with its mode.

    Raises ``BackupError`` naming the files changed since the fix, unless ``force``.
    """
    manifest = read_manifest(backup_dir)
    root = Path(manifest["root"])
    files_dir = (backup_dir / "files").resolve()
    plan: list[tuple[Path, bytes, int]] = []
    edited: list[str] = []
    for entry in manifest["files"]:
        rel = str(entry["path"])
        source = (files_dir / rel).resolve()
        target = (root / rel).resolve()
        if not is_inside(files_dir, source) or not is_inside(root.resolve(), target):
            raise PathEscape(f"{rel} escapes the backup or its root")
        data = source.read_bytes()
        if sha256_bytes(data) != entry["sha256"]:
            raise BackupError(f"{source}: content does not match the backup's sha256")
        plan.append((target, data, int(entry["mode"])))
        if not force and _edited_since_fix(target, entry):
            edited.append(rel)
    if edited:
        raise BackupError(
            f"{len(edited)} file(s) changed since the fix: {', '.join(edited)}; "
            "restoring would lose those changes (restore --force overwrites them)"
        )
    for target, data, mode in plan:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.devskyy-restore")
        tmp.write_bytes(data)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    return Restored(
        str(backup_dir.resolve()), str(root), [str(e["path"]) for e in manifest["files"]]
    )


def new_backup_dir(state_dir: Path, now: float, run_id: str | None = None) -> Path:
    """A fresh backup folder name: the run id when known, else a UTC timestamp + random."""
    if run_id:
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in run_id)
    else:
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
        name = f"fix-{stamp}-{secrets.token_hex(3)}"
    return state_dir / "backups" / name
