"""Issue 11.1 for the other writers: restore, the publisher, discover, and safe_files itself.

A hostile tree plants symbolic links where these write; the outside file must stay
byte-identical (mode included) and the command or agent must say what it refused.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from devskyy.adapters import safe_files
from devskyy.adapters.clock import FakeClock
from devskyy.agents.codecheck import backup
from devskyy.agents.publisher import PublisherAgent
from devskyy.cli import main
from devskyy.errors import PermanentError
from devskyy.runtime.agent import AgentContext

PRECIOUS = b"outside the workspace\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    path = outside / "victim.txt"
    path.write_bytes(PRECIOUS)
    path.chmod(0o600)
    return path


def _untouched(victim: Path) -> None:
    assert victim.read_bytes() == PRECIOUS
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600


# -- safe_files ------------------------------------------------------------------------


def test_write_creates_replaces_and_keeps_the_mode(tmp_path: Path) -> None:
    safe_files.write_bytes(tmp_path, "a/b/c.txt", b"one", make_parents=True)
    target = tmp_path / "a" / "b" / "c.txt"
    assert target.read_bytes() == b"one"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    target.chmod(0o751)
    safe_files.write_bytes(tmp_path, "a/b/c.txt", b"two")
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o751
    safe_files.write_bytes(tmp_path, "a/b/c.txt", b"three", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path / "a" / "b")) == ["c.txt"]  # no temporary file left


def test_write_refuses_a_link_destination_and_a_link_on_the_way(
    tmp_path: Path, victim: Path
) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "file.txt").symlink_to(victim)
    (root / "via").symlink_to(victim.parent, target_is_directory=True)
    with pytest.raises(safe_files.UnsafeWrite) as raised:
        safe_files.write_bytes(root, "file.txt", b"x")
    assert str(raised.value) == "refused to write file.txt: it is a symbolic link"
    with pytest.raises(safe_files.UnsafeWrite) as raised:
        safe_files.write_bytes(root, "via/victim.txt", b"x")
    assert str(raised.value) == (
        "refused to write via/victim.txt: the folder 'via' on its way is a symbolic link"
    )
    with pytest.raises(safe_files.UnsafeWrite):
        safe_files.write_bytes(root, "via/new/x.txt", b"x", make_parents=True)
    with pytest.raises(safe_files.UnsafeWrite) as raised:
        safe_files.read_bytes(root, "file.txt")
    assert str(raised.value) == "refused to read file.txt: it is a symbolic link"
    _untouched(victim)
    assert sorted(os.listdir(victim.parent)) == ["victim.txt"]
    assert not (root / "real" / "x").exists()


@pytest.mark.parametrize("rel", ["/etc/passwd", "../x", "a/../../x", "", ".", "a\x00b"])
def test_paths_must_stay_below_their_root(tmp_path: Path, rel: str) -> None:
    with pytest.raises(safe_files.UnsafeWrite):
        safe_files.write_bytes(tmp_path, rel, b"x")
    assert os.listdir(tmp_path) == []


def test_write_refuses_a_folder_or_fifo_as_destination(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "f")
    for name in ("d", "f"):
        with pytest.raises(safe_files.UnsafeWrite, match=r"it is not a regular file$"):
            safe_files.write_bytes(tmp_path, name, b"x")


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    safe_files.write_bytes(tmp_path, "a.txt", b"old")

    def broken(src: str, dst: str, **dir_fds: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="No space left"):
        safe_files.write_bytes(tmp_path, "a.txt", b"new")
    assert (tmp_path / "a.txt").read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_check_read_mode_and_folders(tmp_path: Path, victim: Path) -> None:
    safe_files.check_writable(tmp_path, "not/yet/there.txt")  # a missing folder is fine
    safe_files.make_folders(tmp_path, "a/b", folder_mode=0o700)
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700
    long_name = "n" * 250
    safe_files.write_bytes(tmp_path, f"a/b/{long_name}", b"long", mode=0o640)
    assert safe_files.read_bytes(tmp_path, f"a/b/{long_name}") == b"long"
    assert safe_files.file_mode(tmp_path, f"a/b/{long_name}") == 0o640
    assert safe_files.file_mode(tmp_path, "a/b/missing") is None
    (tmp_path / "a" / "link").symlink_to(victim)
    assert safe_files.file_mode(tmp_path, "a/link") is None
    with pytest.raises(safe_files.UnsafeWrite, match="it is a symbolic link"):
        safe_files.check_writable(tmp_path, "a/link")
    os.mkfifo(tmp_path / "a" / "pipe")
    with pytest.raises(safe_files.UnsafeWrite, match="refused to read a/pipe: it is not"):
        safe_files.read_bytes(tmp_path, "a/pipe")  # and it did not block
    (tmp_path / "c").symlink_to(victim.parent, target_is_directory=True)
    with pytest.raises(safe_files.UnsafeWrite, match="the folder 'c' on its way"):
        safe_files.make_folders(tmp_path, "c/d")
    _untouched(victim)


# -- restore ---------------------------------------------------------------------------


def _fixed_project(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_bytes(b"fixed\n")
    (root / "b.py").write_bytes(b"fixed\n")
    saved = backup.create(
        tmp_path / "state" / "backups" / "fix-1",
        root,
        {"pkg/a.py": b"original a\n", "b.py": b"original b\n"},
        0.0,
        {"pkg/a.py": b"fixed\n", "b.py": b"fixed\n"},
    )
    return root, saved


def _restore(tmp_path: Path, *args: str) -> tuple[int, str]:
    state = ["--state", f"sqlite:///{tmp_path / 'state' / 'state.db'}"]
    result = CliRunner().invoke(main, [*state, "restore", *args])
    return result.exit_code, result.stderr


def test_restore_refuses_a_file_swapped_for_a_link(tmp_path: Path, victim: Path) -> None:
    root, saved = _fixed_project(tmp_path)
    (root / "b.py").unlink()
    (root / "b.py").symlink_to(victim)
    code, err = _restore(tmp_path, "--force", str(saved))
    assert (code, err) == (
        1,
        f"error: cannot restore {saved}: refused to restore b.py: it is a symbolic link\n",
    )
    _untouched(victim)
    assert (root / "pkg" / "a.py").read_bytes() == b"fixed\n"  # nothing restored


def test_restore_refuses_a_symlinked_parent_folder(tmp_path: Path, victim: Path) -> None:
    root, saved = _fixed_project(tmp_path)
    decoy = victim.parent / "pkg"
    decoy.mkdir()
    (decoy / "a.py").write_bytes(PRECIOUS)
    (root / "pkg" / "a.py").unlink()
    (root / "pkg").rmdir()
    (root / "pkg").symlink_to(decoy, target_is_directory=True)
    code, err = _restore(tmp_path, "--force", str(saved))
    assert (code, err) == (
        1,
        f"error: cannot restore {saved}: refused to restore pkg/a.py: "
        "the folder 'pkg' on its way is a symbolic link\n",
    )
    assert (decoy / "a.py").read_bytes() == PRECIOUS
    assert (root / "b.py").read_bytes() == b"fixed\n"


def test_restore_never_uses_the_old_predictable_temporary_name(
    tmp_path: Path, victim: Path
) -> None:
    root, saved = _fixed_project(tmp_path)
    (root / ".b.py.devskyy-restore").symlink_to(victim)
    code, err = _restore(tmp_path, str(saved))
    assert (code, err) == (0, "")
    _untouched(victim)
    assert (root / "b.py").read_bytes() == b"original b\n"


def test_a_backup_copy_that_is_a_link_is_never_read(tmp_path: Path, victim: Path) -> None:
    root, saved = _fixed_project(tmp_path)
    (saved / "files" / "b.py").unlink()
    (saved / "files" / "b.py").symlink_to(victim)
    code, err = _restore(tmp_path, str(saved))
    assert (code, err) == (
        1,
        f"error: cannot restore {saved}: b.py escapes the backup or its root\n",
    )
    _untouched(victim)
    assert (root / "b.py").read_bytes() == b"fixed\n"


# -- publisher -------------------------------------------------------------------------

ARTICLE = {"title": "Hello world", "body": "Some text.", "slug": "hello"}


def _publisher(tmp_path: Path, site: Path) -> PublisherAgent:
    agent = PublisherAgent()
    agent.bind(
        AgentContext(
            name="publisher",
            config={"outputDir": str(site)},
            clock=FakeClock(),
            state_dir=tmp_path / "state",
        )
    )
    return agent


def test_publisher_refuses_a_page_that_is_a_link(tmp_path: Path, victim: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "hello.html").symlink_to(victim)
    agent = _publisher(tmp_path, site)
    with pytest.raises(PermanentError) as raised:
        asyncio.run(agent.execute_core_function(article=ARTICLE))
    assert str(raised.value) == "publish: refused to write hello.html: it is a symbolic link"
    _untouched(victim)
    assert sorted(os.listdir(victim.parent)) == ["victim.txt"]


def test_publisher_never_reads_front_matter_through_a_link(tmp_path: Path, victim: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "hello.md").symlink_to(victim)
    agent = _publisher(tmp_path, site)
    with pytest.raises(PermanentError) as raised:
        asyncio.run(agent.execute_core_function(article=ARTICLE))
    assert str(raised.value) == "publish: refused to read hello.md: it is a symbolic link"
    _untouched(victim)


def test_publisher_writes_pages_and_no_temporary_files(tmp_path: Path) -> None:
    site = tmp_path / "site"
    agent = _publisher(tmp_path, site)
    result = asyncio.run(agent.execute_core_function(article=ARTICLE))
    assert result["status"] == "created"
    assert sorted(os.listdir(site)) == ["hello.html", "hello.md"]
    assert stat.S_IMODE((site / "hello.md").stat().st_mode) == 0o644


def test_publisher_webhook_records_never_go_through_a_symlinked_folder(
    tmp_path: Path, victim: Path
) -> None:
    state = tmp_path / "state"
    (state / "published").mkdir(parents=True)
    (state / "published" / ".webhook").symlink_to(victim.parent, target_is_directory=True)
    agent = PublisherAgent()
    agent.bind(
        AgentContext(
            name="publisher",
            # Nothing listens there: the refusal must come before any delivery attempt.
            config={"webhookUrl": "http://127.0.0.1:9/hook", "webhookMaxAttempts": 1},
            clock=FakeClock(),
            state_dir=state,
        )
    )
    with pytest.raises(PermanentError) as raised:
        asyncio.run(agent.execute_core_function(article=ARTICLE))
    assert str(raised.value) == (
        "publish: refused to read published/.webhook/hello.json: "
        "the folder '.webhook' on its way is a symbolic link"
    )
    assert sorted(os.listdir(victim.parent)) == ["victim.txt"]


# -- discover --------------------------------------------------------------------------

AGENT_SOURCE = """
from devskyy.runtime.agent import BaseAgent


class ScannerAgent(BaseAgent):
    capabilities = ["scan"]

    async def execute_core_function(self, **kwargs):
        return {}
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "scanner_agent.py").write_text(AGENT_SOURCE)
    monkeypatch.chdir(repo)
    return repo


def test_discover_refuses_a_manifest_that_is_a_link(repo: Path, victim: Path) -> None:
    (repo / "manifests" / "agents").mkdir(parents=True)
    (repo / "manifests" / "agents" / "scanner.yaml").symlink_to(victim)
    result = CliRunner().invoke(main, ["discover", "src", "--force"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "error: refused to write manifests/agents/scanner.yaml: it is a symbolic link"
    )
    _untouched(victim)


def test_discover_refuses_a_dangling_link_without_force(repo: Path, tmp_path: Path) -> None:
    (repo / "manifests" / "agents").mkdir(parents=True)
    planted = tmp_path / "outside" / "created-by-discover.yaml"
    (repo / "manifests" / "agents" / "scanner.yaml").symlink_to(planted)
    result = CliRunner().invoke(main, ["discover", "src"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "error: refusing to overwrite manifests/agents/scanner.yaml (use --force to replace)"
    )
    assert not planted.exists()


def test_discover_refuses_a_symlinked_output_folder(repo: Path, victim: Path) -> None:
    (repo / "manifests").symlink_to(victim.parent, target_is_directory=True)
    result = CliRunner().invoke(main, ["discover", "src", "--output-dir", "manifests/agents"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        "error: refused to write manifests/agents/scanner.yaml: "
        "the folder 'manifests' on its way is a symbolic link"
    )
    assert sorted(os.listdir(victim.parent)) == ["victim.txt"]
    _untouched(victim)


def test_discover_writes_under_the_working_tree(repo: Path) -> None:
    result = CliRunner().invoke(main, ["discover", "src"])
    assert result.exit_code == 0, result.output
    written = repo / "manifests" / "agents" / "scanner.yaml"
    assert written.read_text().startswith("apiVersion: devskyy.dev/v1\n")


# -- schema --write --------------------------------------------------------------------


def test_schema_write_refuses_a_planted_link(repo: Path, victim: Path) -> None:
    (repo / "schemas").mkdir()
    (repo / "schemas" / "agent.json").symlink_to(victim)
    result = CliRunner().invoke(main, ["schema", "--write", "schemas"])
    assert result.exit_code == 1
    assert result.stderr == ("error: refused to write schemas/agent.json: it is a symbolic link\n")
    _untouched(victim)
    assert not (repo / "schemas" / "workflow.json").exists()  # stopped at the first


def test_schema_write_refuses_a_symlinked_folder_of_the_tree(repo: Path, victim: Path) -> None:
    (repo / "docs").symlink_to(victim.parent, target_is_directory=True)
    result = CliRunner().invoke(main, ["schema", "--write", "docs/schemas"])
    assert result.exit_code == 1
    assert result.stderr == (
        "error: refused to write docs/schemas/agent.json: "
        "the folder 'docs' on its way is a symbolic link\n"
    )
    assert sorted(os.listdir(victim.parent)) == ["victim.txt"]


# -- the state folder's .gitignore -------------------------------------------------------


def test_a_dangling_gitignore_link_in_the_state_folder_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "checkout"
    (checkout / ".devskyy").mkdir(parents=True)
    aimed = tmp_path / "outside" / "created-by-devskyy"
    (tmp_path / "outside").mkdir()
    (checkout / ".devskyy" / ".gitignore").symlink_to(aimed)
    monkeypatch.chdir(checkout)
    monkeypatch.delenv("DEVSKYY_STATE_URL", raising=False)
    result = CliRunner().invoke(main, ["keys", "list"])
    assert result.exit_code == 0, result.output
    assert not aimed.exists()
    assert (checkout / ".devskyy" / ".gitignore").is_symlink()
