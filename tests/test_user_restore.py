"""Found by using devskyy as a platform engineer would (helper H8): ``restore``.

``devskyy restore RUN_ID`` silently overwrote a file edited after the fix (the edit
was lost). Like ``git checkout``, it now refuses, naming the files, unless ``--force``.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from devskyy.agents.codecheck import backup
from devskyy.cli import main


def _fixed_tree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "project"
    root.mkdir()
    (root / "a.py").write_bytes(b"fixed a\n")
    (root / "b.py").write_bytes(b"fixed b\n")
    store = tmp_path / "state" / ".devskyy" / "backups" / "fix-1"
    originals = {"a.py": b"original a\n", "b.py": b"original b\n"}
    written = {"a.py": b"fixed a\n", "b.py": b"fixed b\n"}
    return root, backup.create(store, root, originals, 0.0, written)


def test_restore_refuses_to_overwrite_edits_made_after_the_fix(tmp_path: Path) -> None:
    root, saved = _fixed_tree(tmp_path)
    (root / "b.py").write_bytes(b"fixed b\nmy own edit\n")
    state = ["--state", f"sqlite:///{tmp_path / 'state.db'}"]
    refused = CliRunner().invoke(main, [*state, "restore", str(saved)])
    assert (refused.exit_code, refused.stdout) == (1, "")
    assert refused.stderr == (
        f"error: cannot restore {saved}: 1 file(s) changed since the fix: b.py; "
        "restoring would lose those changes (restore --force overwrites them)\n"
    )
    assert (root / "a.py").read_bytes() == b"fixed a\n"  # nothing restored
    assert (root / "b.py").read_bytes() == b"fixed b\nmy own edit\n"
    forced = CliRunner().invoke(main, [*state, "restore", "--force", str(saved)])
    assert forced.exit_code == 0, forced.stderr
    assert (root / "a.py").read_bytes() == b"original a\n"
    assert (root / "b.py").read_bytes() == b"original b\n"
    again = backup.restore(saved)  # restoring twice is harmless
    assert again.files == ["a.py", "b.py"]


def test_backups_without_fixed_hashes_restore_as_before(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "a.py").write_bytes(b"edited later\n")
    saved = backup.create(tmp_path / ".devskyy" / "backups" / "old", root, {"a.py": b"o\n"}, 0.0)
    assert backup.restore(saved).files == ["a.py"]
    assert (root / "a.py").read_bytes() == b"o\n"
