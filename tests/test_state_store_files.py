"""The store's files are private (issue 11.10): ``state.db`` and SQLite's ``-wal`` and
``-shm`` are created 0600 in a 0700 folder whatever the umask, never through a dangling
symbolic link, and ``devskyy migrate`` takes away the access 0.1.0's files gave."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from devskyy.adapters.db import open_engine
from devskyy.cli import main
from devskyy.errors import StateError

DATA = Path(__file__).parent / "data"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture(params=[0o022, 0o000])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_the_store_and_its_wal_and_shm_are_created_0600(tmp_path: Path, umask: int) -> None:
    folder = tmp_path / ".devskyy"
    db = folder / "state.db"
    engine = open_engine(f"sqlite:///{db}")
    with engine.connect() as reader:
        reader.execute(text("select count(*) from revisions")).scalar()
        with engine.begin() as writer:  # WAL mode: the write goes to state.db-wal
            writer.execute(text("insert into audit_head (id, seq, hash) values (1, 0, 'x')"))
        side = {p.name: mode(p) for p in folder.iterdir() if p.name.startswith("state.db")}
    engine.dispose()
    assert side == {"state.db": 0o600, "state.db-wal": 0o600, "state.db-shm": 0o600}
    assert mode(folder) == 0o700


def test_a_dangling_symlink_is_not_followed_to_create_a_store(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "planted.db"
    target.parent.mkdir()
    link = tmp_path / "state.db"
    link.symlink_to(target)
    url = f"sqlite:///{link}"
    with pytest.raises(StateError) as err:
        open_engine(url)
    assert str(err.value) == (
        f"the state store {url} is a symbolic link to a missing file; "
        "remove the link or create its target"
    )
    assert not target.exists()


def test_migrate_makes_a_0_1_0_store_private(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    shutil.copyfile(DATA / "store-0.1.0.db", db)
    db.chmod(0o644)  # as 0.1.0 created it under the usual umask
    result = CliRunner().invoke(main, ["--state", f"sqlite:///{db}", "migrate"])
    assert result.exit_code == 0, result.output
    assert mode(db) == 0o600
    assert mode(tmp_path / "state.db.before-0.1.0") == 0o600
