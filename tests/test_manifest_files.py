"""One contract for both manifest-file adapters: the disk and its in-memory twin."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from devskyy.adapters.manifest_files import (
    DiskManifestFiles,
    ManifestFiles,
    ManifestPathError,
    MemoryManifestFiles,
)

TREE: dict[str, bytes] = {
    "m/agents/b.yaml": b"b: 1\n",
    "m/agents/a.yml": b"a: 1\n",
    "m/workflows/deep/w.yaml": b"w: 1\n",
    "m/README.md": b"not a manifest\n",
    "m/.git/config.yaml": b"hidden: 1\n",
    "m/big.yaml": b"x" * 64,
    "other.yaml": b"o: 1\n",
}


def disk(tmp_path: Path) -> ManifestFiles:
    for name, data in TREE.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return DiskManifestFiles(cwd=tmp_path)


def memory(_tmp_path: Path) -> ManifestFiles:
    return MemoryManifestFiles(dict(TREE))


@pytest.fixture(params=[disk, memory], ids=["disk", "memory"])
def files(request: pytest.FixtureRequest, tmp_path: Path) -> ManifestFiles:
    make: Callable[[Path], ManifestFiles] = request.param
    return make(tmp_path)


def test_lists_yaml_files_recursively_sorted_skipping_hidden_folders(files: ManifestFiles) -> None:
    found = files.read_tree("m", max_bytes=32)
    assert [(f.name, f.data, f.error) for f in found] == [
        ("m/agents/a.yml", b"a: 1\n", None),
        ("m/agents/b.yaml", b"b: 1\n", None),
        ("m/big.yaml", None, "file is larger than the limit of 32 bytes"),
        ("m/workflows/deep/w.yaml", b"w: 1\n", None),
    ]


def test_a_single_file(files: ManifestFiles) -> None:
    [only] = files.read_tree("m/agents/b.yaml")
    assert (only.name, only.data) == ("m/agents/b.yaml", b"b: 1\n")


def test_a_subfolder_and_a_trailing_slash(files: ManifestFiles) -> None:
    assert [f.name for f in files.read_tree("m/workflows/")] == ["m/workflows/deep/w.yaml"]


def test_a_missing_path(files: ManifestFiles) -> None:
    with pytest.raises(ManifestPathError, match=r"^nope: no such file or directory$"):
        files.read_tree("nope")


def test_disk_names_are_relative_to_the_current_directory(tmp_path: Path) -> None:
    files = disk(tmp_path)
    absolute = [f.name for f in files.read_tree(str(tmp_path / "m" / "agents"))]
    assert absolute == ["m/agents/a.yml", "m/agents/b.yaml"]
    inside = DiskManifestFiles(cwd=tmp_path / "m" / "workflows")
    assert [f.name for f in inside.read_tree("../agents")] == [
        "../agents/a.yml",
        "../agents/b.yaml",
    ]
    assert [f.name for f in inside.read_tree(".")] == ["deep/w.yaml"]


def test_disk_does_not_follow_symlinked_folders(tmp_path: Path) -> None:
    files = disk(tmp_path)
    (tmp_path / "m" / "loop").symlink_to(tmp_path / "m", target_is_directory=True)
    names = [f.name for f in files.read_tree("m")]
    assert not any(name.startswith("m/loop/") for name in names)


def test_memory_reports_unreadable_files() -> None:
    files = MemoryManifestFiles({"m/a.yaml": PermissionError(13, "Permission denied")})
    [only] = files.read_tree("m")
    assert (only.name, only.data, only.error) == (
        "m/a.yaml",
        None,
        "cannot read file: Permission denied",
    )


def test_disk_refuses_fifos_without_blocking(tmp_path: Path) -> None:
    files = disk(tmp_path)
    os.mkfifo(tmp_path / "m" / "pipe.yaml")
    found = {f.name: f.error for f in files.read_tree("m")}
    assert found["m/pipe.yaml"] == "cannot read file: not a regular file"
