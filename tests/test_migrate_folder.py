"""``devskyy migrate`` makes a 0.1.0 store's folder private when the folder is the store's own.

devskyy 0.1.0 created the store's folder with the umask's mode (0755): other local users
could list it. ``migrate`` already made the files 0600; it now also takes group and other
access off the folder, but only off ``.devskyy`` or a folder that holds nothing but the
store's files, never off a folder the user keeps other things in, nor through a link.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from devskyy.adapters import store_schema
from devskyy.cli import main

STORE_010 = Path(__file__).parent / "data" / "store-0.1.0.db"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def old_store(folder: Path) -> Path:
    """The committed 0.1.0 store in ``folder``, with the modes 0.1.0 gave them."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    db = folder / "state.db"
    shutil.copyfile(STORE_010, db)
    db.chmod(0o644)
    return db


def migrate(db: Path) -> None:
    url = f"sqlite:///{db}"
    result = CliRunner().invoke(main, ["--state", url, "migrate"])
    assert result.exit_code == 0, result.output
    backup = db.with_name("state.db.before-0.1.0")
    assert result.output == (  # nothing more to read: the change is silent
        f"migrated {url} from no version (0.1.0) to {store_schema.head()}\nbackup: {backup}\n"
    )


@pytest.mark.parametrize("name", [".devskyy", "store"])
def test_the_stores_own_folder_becomes_0700(tmp_path: Path, name: str) -> None:
    db = old_store(tmp_path / name)
    migrate(db)
    assert (mode(db.parent), mode(db)) == (0o700, 0o600)
    # "store" held only state.db, then its backup too: both are the store's files
    # (devskyy also marks .devskyy/ as ignored by git).
    marker = [".gitignore"] if name == ".devskyy" else []
    assert sorted(p.name for p in db.parent.iterdir()) == [
        *marker,
        "state.db",
        "state.db.before-0.1.0",
    ]


def test_a_devskyy_folder_is_the_stores_own_whatever_else_it_holds(tmp_path: Path) -> None:
    db = old_store(tmp_path / ".devskyy")
    (db.parent / "backups").mkdir()  # what agents keep beside the store
    (db.parent / ".gitignore").write_text("*\n")
    migrate(db)
    assert mode(db.parent) == 0o700


def test_a_folder_that_holds_anything_else_is_left_as_it_was(tmp_path: Path) -> None:
    home = tmp_path / "home"
    db = old_store(home)
    (home / "notes.txt").write_text("mine")
    (home / "state.db.old").write_text("not the store's: only .before-* copies are")
    migrate(db)
    assert (mode(home), mode(db)) == (0o755, 0o600)


def test_the_folder_is_never_changed_through_a_symbolic_link(tmp_path: Path) -> None:
    real = tmp_path / "real"
    old_store(real)
    (tmp_path / "project").mkdir()
    link = tmp_path / "project" / ".devskyy"
    link.symlink_to(real)
    migrate(link / "state.db")
    assert (mode(real), mode(real / "state.db")) == (0o755, 0o600)


def test_a_store_named_by_a_sqlite_uri_is_made_private_too(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    db = folder / "state.db"
    folder.mkdir()
    created = CliRunner().invoke(main, ["--state", f"sqlite:///{db}", "migrate"])
    assert created.exit_code == 0, created.output
    folder.chmod(0o755)
    db.chmod(0o644)
    url = f"sqlite:///file:{db}?mode=rwc&uri=true"
    result = CliRunner().invoke(main, ["--state", url, "migrate"])
    assert result.exit_code == 0, result.output
    assert result.output.endswith(f"is at schema {store_schema.head()}: nothing to do\n")
    assert (mode(folder), mode(db)) == (0o700, 0o600)


def test_a_store_named_by_a_file_uri_is_backed_up_beside_its_file(tmp_path: Path) -> None:
    db = old_store(tmp_path / "store")
    url = f"sqlite:///file:{db}?uri=true"
    result = CliRunner().invoke(main, ["--state", url, "migrate"])
    assert result.exit_code == 0, result.output
    backup = db.with_name("state.db.before-0.1.0")
    assert result.output.splitlines()[-1] == f"backup: {backup}"
    assert backup.read_bytes()[:16] == b"SQLite format 3\x00"
    assert (mode(db.parent), mode(db), mode(backup)) == (0o700, 0o600, 0o600)
