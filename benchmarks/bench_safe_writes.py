"""What symlink-safe writes cost: ``safe_files.write_bytes`` next to the old fixer write.

Each variant replaces the same N files (spread over nested folders) in a fresh temp tree,
in the same run:

- ``old``: the fixer's former write (``tmp.write_bytes``, ``os.chmod``, ``os.replace`` on
  a predictable ``.<name>.devskyy-fix`` path; follows links, no fsync);
- ``safe, no fsync``: ``safe_files.write_bytes(..., sync=False)``: the O_NOFOLLOW folder
  walk, the exclusive temporary file, fchmod and the rename;
- ``safe``: the same with the file and folder fsyncs the fixer and backups use.

The first two show the price of the checks; the third adds durability (fsync cost
depends on the disk). No target: the fixer writes only the files it changed.

    .venv/bin/python benchmarks/bench_safe_writes.py [--files 500] [--size 4096]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from devskyy.adapters import safe_files


def _tree(root: Path, files: int, size: int) -> list[str]:
    names = []
    for i in range(files):
        rel = f"pkg{i % 10}/sub{i % 7}/m{i}.py"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x" * size)
        names.append(rel)
    return names


def _old(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    mode = path.stat().st_mode & 0o7777
    tmp = path.with_name(f".{path.name}.devskyy-fix")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _measure(write: Callable[[Path, str, bytes], None], files: int, size: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        names = _tree(root, files, size)
        data = b"y" * size
        started = time.perf_counter()
        for rel in names:
            write(root, rel, data)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--size", type=int, default=4096)
    args = parser.parse_args()
    variants: dict[str, Callable[[Path, str, bytes], None]] = {
        "old (follows links)": _old,
        "safe, no fsync": lambda r, p, d: safe_files.write_bytes(r, p, d, sync=False),
        "safe (fsync)": safe_files.write_bytes,
    }
    base = None
    print(f"{args.files} files of {args.size} bytes, replaced once each")
    for name, write in variants.items():
        seconds = min(_measure(write, args.files, args.size) for _ in range(3))
        per = seconds / args.files * 1e6
        base = base or per
        print(f"  {name:22s} {per:8.1f} µs/file  ({per / base:.2f}x old)")


if __name__ == "__main__":
    main()
