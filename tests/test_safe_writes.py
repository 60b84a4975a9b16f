"""Issue 11.1: no fixer write follows a symbolic link out of the workspace.

Each test performs the attack as a hostile repository would (a planted temporary-name
link, a file swapped for a link between scan and fix or between plan and write, a folder
swapped for a link) and checks that the outside file stays byte-identical (and keeps
its mode), and that the run reports the refusal.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from codecheck_helpers import call, make_agent

from devskyy.agents.codecheck import backup, fixrun
from devskyy.agents.codecheck.fixing import FilePlan
from devskyy.agents.fixer import FixerAgent
from devskyy.agents.scanner import ScannerAgent
from devskyy.errors import PermanentError

UNUSED = b"import os\n\nX = 1\n"
FIXED = b"X = 1\n"
PRECIOUS = b"secret outside the workspace\n"


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    """A workspace with two fixable files, and an outside folder with a precious file."""
    root = tmp_path / "ws" / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_bytes(UNUSED)
    (root / "b.py").write_bytes(UNUSED)
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.py"
    victim.write_bytes(PRECIOUS)
    victim.chmod(0o600)
    return {"root": root, "outside": outside, "victim": victim}


def _agents(tmp_path: Path) -> tuple[ScannerAgent, FixerAgent]:
    roots = {"allowedRoots": [str(tmp_path / "ws")]}
    return (
        make_agent(ScannerAgent, tmp_path, "scanner", **roots),
        make_agent(FixerAgent, tmp_path, "fixer", **roots),
    )


def _scan(scanner: ScannerAgent, root: Path) -> dict[str, Any]:
    result = call(scanner, scan_type="quick", target_path=str(root))
    fixable = sorted({i["file"] for i in result["issues"] if i["fixable"]})
    assert fixable == ["b.py", "pkg/a.py"]
    return result


def _untouched(victim: Path) -> None:
    assert victim.read_bytes() == PRECIOUS
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600


def test_a_planted_temporary_name_link_is_never_written_through(
    tmp_path: Path, tree: dict[str, Path]
) -> None:
    """The fixer once wrote through ``.<name>.devskyy-fix`` and chmodded its target."""
    root, victim = tree["root"], tree["victim"]
    for planted in (root / "pkg" / ".a.py.devskyy-fix", root / ".b.py.devskyy-fix"):
        planted.symlink_to(victim)
    scanner, fixer = _agents(tmp_path)
    result = call(fixer, scan_results=_scan(scanner, root))
    _untouched(victim)
    assert (root / "pkg" / ".a.py.devskyy-fix").is_symlink()  # left as it was
    assert result["files_fixed"] == 2
    assert (root / "pkg" / "a.py").read_bytes() == FIXED
    assert (root / "b.py").read_bytes() == FIXED
    assert result["refused_writes"] == []
    leftovers = [p.name for p in root.rglob("*devskyy-tmp")]
    assert leftovers == []


def test_a_file_swapped_for_a_link_between_scan_and_fix_is_refused(
    tmp_path: Path, tree: dict[str, Path]
) -> None:
    root, outside = tree["root"], tree["outside"]
    scanner, fixer = _agents(tmp_path)
    scanned = _scan(scanner, root)
    # Same bytes as scanned, so the sha256 check alone would let it through.
    twin = outside / "a.py"
    twin.write_bytes(UNUSED)
    (root / "pkg" / "a.py").unlink()
    (root / "pkg" / "a.py").symlink_to(twin)
    result = call(fixer, scan_results=scanned)
    assert twin.read_bytes() == UNUSED
    assert (root / "pkg" / "a.py").is_symlink()
    assert result["changed_files"] == ["b.py"]
    assert result["skipped"] == [
        {
            "file": "pkg/a.py",
            "reason": "refused: pkg/a.py leads outside the folder being fixed "
            "('..' or a symbolic link)",
        }
    ]
    assert str(outside) not in str(result)  # where the link leads is not told


def _swap_before_writing(
    monkeypatch: pytest.MonkeyPatch, swap: dict[str, Any], outside: Path
) -> None:
    """Swap a planned file (or its folder) for a link after every check and the backup,
    just before the writes: the race between the fixer's checks and its write."""
    real_write_all = fixrun._write_all

    def swap_then_write(
        root: Path, plans: Sequence[FilePlan]
    ) -> tuple[list[FilePlan], list[dict[str, str]]]:
        swap["do"](root)
        return real_write_all(root, plans)

    monkeypatch.setattr(fixrun, "_write_all", swap_then_write)


def test_a_file_swapped_for_a_link_before_writing_is_refused_at_write_time(
    tmp_path: Path, tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, victim = tree["root"], tree["victim"]

    def swap(root: Path) -> None:
        (root / "pkg" / "a.py").unlink()
        (root / "pkg" / "a.py").symlink_to(victim)

    scanner, fixer = _agents(tmp_path)
    scanned = _scan(scanner, root)
    _swap_before_writing(monkeypatch, {"do": swap}, tree["outside"])
    result = call(fixer, scan_results=scanned)
    _untouched(victim)
    assert (root / "pkg" / "a.py").is_symlink()
    assert result["refused_writes"] == [
        {"file": "pkg/a.py", "reason": "refused: it is a symbolic link"}
    ]
    assert {"file": "pkg/a.py", "reason": "refused: it is a symbolic link"} in result["skipped"]
    assert result["changed_files"] == ["b.py"]
    assert result["files_fixed"] == 1
    assert {f["file"] for f in result["fixes_applied"]} == {"b.py"}
    assert (root / "b.py").read_bytes() == FIXED
    # The backup lists only what the run changed, so restore never meets the link.
    manifest = json.loads((Path(result["backup_path"]) / "manifest.json").read_text())
    assert [e["path"] for e in manifest["files"]] == ["b.py"]
    copies = Path(result["backup_path"]) / "files"
    assert sorted(str(p.relative_to(copies)) for p in copies.rglob("*.py")) == ["b.py"]
    (root / "b.py").write_bytes(FIXED)
    assert backup.restore(Path(result["backup_path"])).files == ["b.py"]
    assert (root / "b.py").read_bytes() == UNUSED
    _untouched(victim)


def test_a_folder_swapped_for_a_link_before_writing_is_refused_at_write_time(
    tmp_path: Path, tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = tree["root"], tree["outside"]
    decoy = outside / "pkg"
    decoy.mkdir()
    (decoy / "a.py").write_bytes(UNUSED)

    def swap(root: Path) -> None:
        (root / "pkg").rename(root.parent / "pkg-moved")
        (root / "pkg").symlink_to(decoy, target_is_directory=True)

    scanner, fixer = _agents(tmp_path)
    scanned = _scan(scanner, root)
    _swap_before_writing(monkeypatch, {"do": swap}, outside)
    result = call(fixer, scan_results=scanned)
    assert (decoy / "a.py").read_bytes() == UNUSED
    assert sorted(os.listdir(decoy)) == ["a.py"]  # no temporary file left there either
    assert result["refused_writes"] == [
        {
            "file": "pkg/a.py",
            "reason": "refused: the folder 'pkg' on its way is a symbolic link",
        }
    ]
    assert result["changed_files"] == ["b.py"]


def test_a_symlinked_parent_folder_before_the_fix_is_refused(
    tmp_path: Path, tree: dict[str, Path]
) -> None:
    root, outside = tree["root"], tree["outside"]
    scanner, fixer = _agents(tmp_path)
    scanned = _scan(scanner, root)
    decoy = outside / "pkg"
    decoy.mkdir()
    (decoy / "a.py").write_bytes(UNUSED)
    (root / "pkg" / "a.py").unlink()
    (root / "pkg").rmdir()
    (root / "pkg").symlink_to(decoy, target_is_directory=True)
    result = call(fixer, scan_results=scanned)
    assert (decoy / "a.py").read_bytes() == UNUSED
    assert [s["file"] for s in result["skipped"]] == ["pkg/a.py"]
    assert result["skipped"][0]["reason"].startswith("refused: ")
    assert str(outside) not in str(result)
    assert result["changed_files"] == ["b.py"]


def test_when_every_write_is_refused_the_run_fails_naming_them(
    tmp_path: Path, tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, victim = tree["root"], tree["victim"]

    def swap(root: Path) -> None:
        (root / "b.py").unlink()
        (root / "b.py").symlink_to(victim)

    scanner, fixer = _agents(tmp_path)
    scanned = _scan(scanner, root)
    _swap_before_writing(monkeypatch, {"do": swap}, tree["outside"])
    with pytest.raises(PermanentError) as raised:
        call(fixer, scan_results=scanned, target_files=["b.py"])
    assert str(raised.value) == (
        "nothing was written; every file was refused: b.py (refused: it is a symbolic link)"
    )
    _untouched(victim)
    assert (root / "pkg" / "a.py").read_bytes() == UNUSED  # not named, not touched


def test_a_symlinked_backups_folder_stops_the_fix_before_any_write(
    tmp_path: Path, tree: dict[str, Path]
) -> None:
    """The state dir may sit in a checkout (``.devskyy`` of the repository): a planted
    ``backups`` link must not receive the originals, and no file is fixed without them."""
    root, outside = tree["root"], tree["outside"]
    state = tmp_path / "state" / ".devskyy"
    state.mkdir(parents=True)
    (state / "backups").symlink_to(outside, target_is_directory=True)
    scanner, fixer = _agents(tmp_path)
    with pytest.raises(PermanentError) as raised:
        call(fixer, scan_results=_scan(scanner, root))
    assert str(raised.value).startswith(
        "refused to write the fixer backup: refused to write backups/"
    )
    assert str(raised.value).endswith(": the folder 'backups' on its way is a symbolic link")
    assert sorted(os.listdir(outside)) == ["victim.py"]
    assert (root / "b.py").read_bytes() == UNUSED
    assert (root / "pkg" / "a.py").read_bytes() == UNUSED
