"""Found by using devskyy as a platform engineer would (helper H8): CLI edge cases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.exc import OperationalError

from devskyy.adapters import db
from devskyy.cli import _common, main


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_plan_usage_error_exits_1_not_2_changes_pending(tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    code, out, err = _cli("--state", state, "plan", "--detailed-exitcode", "--bogus")
    assert (code, out) == (1, "")
    assert err.endswith("Error: No such option '--bogus'.\n")
    code, _, err = _cli("--state", state, "plan", "a", "b", "--detailed-exitcode")
    assert code == 1
    assert err.endswith("Error: Got unexpected extra argument (b)\n")
    code, _, err = _cli("--state", state, "plan", "-o", "wide", "--detailed-exitcode")
    assert code == 1
    assert "'wide' is not one of 'table', 'json'" in err
    assert not (tmp_path / "state.db").exists()


def test_bad_state_url_is_a_clear_error_not_an_internal_one(tmp_path: Path) -> None:
    example = "e.g. sqlite:///.devskyy/state.db or postgresql+psycopg://user@host/db"
    assert _cli("--state", "bogus://x", "history") == (
        1,
        "",
        f"error: state URL 'bogus://x': unknown database driver 'bogus' ({example})\n",
    )
    assert _cli("--state", "notaurl", "history") == (
        1,
        "",
        f"error: state URL 'notaurl' is not a SQLAlchemy URL ({example})\n",
    )
    assert _cli("--state", "sq:lite//u:pw@x", "get", "agents")[2] == (
        f"error: state URL 'sq:lite//u:***@x' is not a SQLAlchemy URL ({example})\n"
    )
    blocker = tmp_path / "afile"
    blocker.write_text("")
    assert _cli("--state", f"sqlite:///{blocker}/x.db", "keys", "list") == (
        1,
        "",
        f"error: state store sqlite:///{blocker}/x.db: {blocker} is not a folder\n",
    )


def test_unreachable_state_store_hides_the_password() -> None:
    code, out, err = _cli(
        "--state", "postgresql+psycopg://ops:s3cret@127.0.0.1:1/devskyy", "history"
    )
    assert (code, out) == (1, "")
    assert err.startswith(
        "error: cannot open the state store postgresql+psycopg://ops:***@127.0.0.1:1/devskyy: "
    )
    assert "s3cret" not in err
    assert "internal error" not in err


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "state.db"
    bad.write_text("this is not sqlite\n" * 100)
    assert _cli("--state", f"sqlite:///{bad}", "audit", "--verify") == (
        1,
        "",
        f"error: the state store sqlite:///{bad} is damaged (file is not a database): "
        "restore it from a backup\n",
    )


def test_a_store_error_while_creating_is_one_line_and_not_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # (Two first commands racing to create one store: tests/test_migrations.py, the
    # creation holds the store's schema lock, so no "already exists" race remains.)
    calls: list[str] = []

    def failing(bind: Any, **kwargs: Any) -> None:
        calls.append("create_all")
        raise OperationalError("CREATE TABLE resources", {}, Exception("disk I/O error"))

    monkeypatch.setattr(db.metadata, "create_all", failing)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    assert _cli("--state", url, "keys", "list") == (
        1,
        "",
        f"error: the state store {url} cannot be written (disk I/O error): "
        "check the disk and the file system it is on\n",
    )
    assert calls == ["create_all"]


def test_the_default_state_folder_keeps_itself_out_of_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEVSKYY_STATE_URL", raising=False)
    assert _cli("keys", "list")[0] == 0
    ignore = tmp_path / ".devskyy" / ".gitignore"
    assert ignore.read_text() == "# Created by devskyy: the local state store and backups.\n*\n"
    ignore.write_text("state.db\n")  # a person's own choice is kept
    assert _cli("keys", "list")[0] == 0
    assert ignore.read_text() == "state.db\n"
    other = tmp_path / "elsewhere"
    other.mkdir()  # a folder --state names must exist (only .devskyy/ is created)
    assert _cli("--state", f"sqlite:///{other / 'state.db'}", "keys", "list")[0] == 0
    assert not (other / ".gitignore").exists()  # only the default folder name


def test_no_color_follows_no_color_org(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_common.sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("NO_COLOR", "1")
    assert _common.use_color() is False
    monkeypatch.setenv("NO_COLOR", "")  # present but empty: colour stays on
    assert _common.use_color() is True
    monkeypatch.delenv("NO_COLOR")
    assert _common.use_color() is True
    monkeypatch.setattr(_common.sys.stdout, "isatty", lambda: False)  # piped
    assert _common.use_color() is False


def test_audit_in_a_folder_without_a_store_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DEVSKYY_STATE_URL", raising=False)
    url = f"sqlite:///{tmp_path / '.devskyy' / 'state.db'}"
    assert _cli("audit", "--verify") == (
        1,
        "",
        f"error: no state store at {url}: nothing to verify "
        "(run from the folder that holds .devskyy/, or pass --state)\n",
    )
    assert _cli("audit") == (0, "No audit events.\n", "")
    assert _cli("audit", "-o", "json") == (0, "[]\n", "")
    assert not (tmp_path / ".devskyy").exists()


def test_top_level_help_names_the_state_env_var() -> None:
    code, out, _ = _cli("--help")
    assert code == 0
    assert (
        "  --state URL  SQLAlchemy URL of the state store [default: sqlite in\n"
        "               ./.devskyy/state.db].  [env var: DEVSKYY_STATE_URL]\n"
    ) in out


def test_a_closed_output_pipe_ends_quietly(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "devskyy.cli", "schema"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # like `| head -1` that has already exited
    err = proc.stderr.read()
    proc.stderr.close()
    assert (proc.wait(timeout=60), err) == (141, b"")
