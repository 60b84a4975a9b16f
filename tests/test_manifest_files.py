"""One contract for both manifest-file adapters: the disk and its in-memory twin."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
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


# -- nothing is skipped in silence --------------------------------------------------------

AGENT_DOC = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: {name}
spec:
  module: devskyy.agents.scanner:ScannerAgent
"""


class _UnlistableFolder(DiskManifestFiles):
    """The disk, except that one folder cannot be listed (as ``chmod 000`` for a non-root)."""

    def __init__(self, cwd: Path, denied: str) -> None:
        super().__init__(cwd=cwd)
        self.denied = denied

    def scan_folder(self, folder: str) -> list[os.DirEntry[str]]:
        if Path(folder).name == self.denied:
            raise PermissionError(13, "Permission denied")
        return super().scan_folder(folder)


def _two_agents(root: Path) -> Path:
    tree = root / "m"
    for folder, name in (("one", "scanner"), ("two", "fixer")):
        (tree / folder).mkdir(parents=True)
        (tree / folder / f"{name}.yaml").write_text(AGENT_DOC.format(name=name))
    return tree


def test_disk_reports_a_folder_it_cannot_list(tmp_path: Path) -> None:
    _two_agents(tmp_path)
    found = _UnlistableFolder(tmp_path, "two").read_tree("m")
    assert [(f.name, f.error) for f in found] == [
        ("m/one/scanner.yaml", None),
        ("m/two", "cannot read folder: Permission denied"),
    ]


def test_disk_reports_an_unlistable_root(tmp_path: Path) -> None:
    _two_agents(tmp_path)
    [only] = _UnlistableFolder(tmp_path, "m").read_tree("m")
    assert (only.name, only.data, only.error) == (
        "m",
        None,
        "cannot read folder: Permission denied",
    )


def test_disk_reports_symlinked_folders_instead_of_skipping_them(tmp_path: Path) -> None:
    tree = _two_agents(tmp_path)
    (tree / "linked").symlink_to(tree / "one", target_is_directory=True)
    (tree / "dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    found = {f.name: f.error for f in DiskManifestFiles(cwd=tmp_path).read_tree("m")}
    assert found["m/linked"] == (
        "symbolic link to a folder: not followed (put the manifests inside the tree, "
        "or name the linked folder itself)"
    )
    assert found["m/dangling.yaml"] == "cannot read file: No such file or directory"
    assert "m/linked/scanner.yaml" not in found


def test_memory_twin_reports_unreadable_folders_and_hides_their_files() -> None:
    files = MemoryManifestFiles(
        {
            "m/a.yaml": b"a: 1\n",
            "m/w/": PermissionError(13, "Permission denied"),
            "m/w/x.yaml": b"x: 1\n",
        }
    )
    assert [(f.name, f.error) for f in files.read_tree("m")] == [
        ("m/a.yaml", None),
        ("m/w", "cannot read folder: Permission denied"),
    ]


def test_validate_names_the_unreadable_folder_instead_of_a_smaller_valid_tree(
    tmp_path: Path,
) -> None:
    from devskyy.runtime.manifests import validate_tree  # noqa: PLC0415 - runtime layer

    _two_agents(tmp_path)
    result = validate_tree("m", [], files=_UnlistableFolder(tmp_path, "two"))
    assert [str(p) for p in result.problems] == [
        "m/two:1:1: <file>: cannot read folder: Permission denied"
    ]


def test_prune_deletes_nothing_when_part_of_the_tree_is_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devskyy.adapters.clock import FakeClock  # noqa: PLC0415
    from devskyy.adapters.db import open_engine  # noqa: PLC0415
    from devskyy.adapters.state_store import SqlStateStore  # noqa: PLC0415
    from devskyy.errors import ManifestError  # noqa: PLC0415
    from devskyy.runtime.reconciler import Reconciler  # noqa: PLC0415

    tree = _two_agents(tmp_path)
    monkeypatch.chdir(tmp_path)
    engine = open_engine(f"sqlite:///{tmp_path / 'state.db'}")
    store = SqlStateStore(engine)
    reconciler = Reconciler(store, FakeClock())
    assert reconciler.apply_tree(tree, prune=True).revision is not None
    # The daemon's and the CLI's reading goes through DiskManifestFiles.scan_folder.
    listed = DiskManifestFiles.scan_folder

    def denied(self: DiskManifestFiles, folder: str) -> list[os.DirEntry[str]]:
        if Path(folder).name == "two":
            raise PermissionError(13, "Permission denied")
        return listed(self, folder)

    monkeypatch.setattr(DiskManifestFiles, "scan_folder", denied)
    with pytest.raises(ManifestError) as caught:
        reconciler.apply_tree(tree, prune=True)
    assert [str(p) for p in caught.value.problems] == [
        "m/two:1:1: <file>: cannot read folder: Permission denied"
    ]
    assert sorted(a.name for a in store.live().agents) == ["fixer", "scanner"]
    assert store.current_revision() == 1
    engine.dispose()


NOBODY = 65534


def _without_root(work: Callable[[], object]) -> object:
    """``work()`` in a forked child that dropped root for ``nobody`` (so that a chmod 000
    folder denies it, as it does a service account), its JSON result read back via a pipe."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        code = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write_end, json.dumps(work()).encode())
        except BaseException as exc:
            os.write(write_end, json.dumps({"child error": repr(exc)}).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks))


def test_a_real_chmod_000_folder_is_a_problem() -> None:
    # Not tmp_path: its parents are private to root, and the reader may be "nobody".
    base = Path(tempfile.mkdtemp(prefix="devskyy-chmod-"))
    try:
        base.chmod(0o755)
        tree = _two_agents(base)
        for folder in (tree, tree / "one"):
            folder.chmod(0o755)
        (tree / "one" / "scanner.yaml").chmod(0o644)
        (tree / "two").chmod(0)

        def read() -> object:
            found = DiskManifestFiles(cwd=base).read_tree("m")
            return {f.name: f.error for f in found}

        found = read() if os.geteuid() != 0 else _without_root(read)
    finally:
        (base / "m" / "two").chmod(0o755)
        shutil.rmtree(base)
    assert found == {
        "m/one/scanner.yaml": None,
        "m/two": "cannot read folder: Permission denied",
    }


def test_validate_cli_exits_1_naming_the_unreadable_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner  # noqa: PLC0415

    from devskyy.cli import main  # noqa: PLC0415

    _two_agents(tmp_path)
    monkeypatch.chdir(tmp_path)
    listed = DiskManifestFiles.scan_folder

    def denied(self: DiskManifestFiles, folder: str) -> list[os.DirEntry[str]]:
        if Path(folder).name == "two":
            raise PermissionError(13, "Permission denied")
        return listed(self, folder)

    monkeypatch.setattr(DiskManifestFiles, "scan_folder", denied)
    result = CliRunner().invoke(main, ["validate", "m"])
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "m/two:1:1: <file>: cannot read folder: Permission denied\nm: 1 problem\n"
    )
