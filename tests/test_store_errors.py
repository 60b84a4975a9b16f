"""Store errors are errors (issue 19.8): a read-only store, a malformed URL, an option the
driver ignores, corrupt rows. Each is one ``error:`` line that says what to do, exit 1, no
SQL and no traceback, for ``run``, ``keys create``, ``get``, ``plan``, ``history``,
``runs list`` and ``apply``; fatal errors honour ``--log-format json``."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from devskyy.cli import main

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "run": ["run", "ecommerce_order"],
    "keys create": ["keys", "create", "ops", "--role", "admin"],
    "get": ["get", "agents"],
    "plan": ["plan", "manifests"],
    "history": ["history"],
    "runs list": ["runs", "list"],
    "apply": ["apply", "manifests"],
}
READ_ONLY_FIX = (
    "run as a user who may write it (and, for SQLite, its folder) or use another --state"
)


def cli(url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--state", url, *args])
    return result.exit_code, result.output


def one_error_line(output: str) -> str:
    """The output is exactly one ``error:`` line, with no SQL or traceback in it."""
    assert output.count("\n") == 1, output
    assert output.startswith("error: "), output
    for leak in ("Traceback", "[SQL", "SELECT ", "INSERT ", "sqlalche.me", "internal error"):
        assert leak not in output, output
    return output.removesuffix("\n")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(ROOT / "manifests", tmp_path / "manifests")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def applied(workdir: Path) -> Path:
    """A store with the shipped manifests applied and one finished order run."""
    path = workdir / "state.db"
    url = f"sqlite:///{path}"
    assert cli(url, "apply", "manifests")[0] == 0
    code, output = cli(url, "run", "ecommerce_order")
    assert code == 0, output
    return path


def _edit_manifests(workdir: Path) -> None:
    scanner = workdir / "manifests" / "agents" / "scanner.yaml"
    scanner.write_text(scanner.read_text().replace("tier: code", "tier: code2"))


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_read_only_store_reads_and_refuses_writes_in_one_line(
    applied: Path, workdir: Path, name: str
) -> None:
    _edit_manifests(workdir)  # so that apply has something to write
    url = f"sqlite:///file:{applied}?mode=ro&uri=true"
    code, output = cli(url, *COMMANDS[name])
    if name in ("get", "plan", "history", "runs list"):
        assert code in (0, 2), output  # reading a read-only store works
        assert "error" not in output
        return
    assert code == 1
    assert one_error_line(output) == (
        f"error: the state store {url} is read-only (attempt to write a readonly database): "
        f"{READ_ONLY_FIX}"
    )


@pytest.mark.parametrize("name", list(COMMANDS))
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "nonsense",
            "error: state URL 'nonsense' is not a SQLAlchemy URL "
            "(e.g. sqlite:///.devskyy/state.db or postgresql+psycopg://user@host/db)",
        ),
        (
            "sqlite:///{tmp}/s.db?foo=bar",
            "error: state URL 'sqlite:///{tmp}/s.db?foo=bar' has an option the driver does "
            "not accept (Query string argument(s) 'foo' are not accepted by the pysqlite "
            "driver and are being ignored; SQLite URI arguments require that 'uri=true' also "
            "be present in the URL.); remove it",
        ),
        (
            "sqlite:///{tmp}/s.db?timeout=soon",
            "error: state URL 'sqlite:///{tmp}/s.db?timeout=soon' has an option the driver "
            "does not accept (could not convert string to float: 'soon'); remove it",
        ),
        (
            "nosuchdb://host/x",
            "error: state URL 'nosuchdb://host/x': unknown database driver 'nosuchdb' "
            "(e.g. sqlite:///.devskyy/state.db or postgresql+psycopg://user@host/db)",
        ),
    ],
)
def test_a_malformed_url_or_unsupported_option_is_one_line(
    workdir: Path, name: str, url: str, expected: str
) -> None:
    url, expected = url.format(tmp=workdir), expected.format(tmp=workdir)
    code, output = cli(url, *COMMANDS[name])
    assert (code, one_error_line(output)) == (1, expected)
    assert not (workdir / "s.db").exists()  # nothing was created


def _corrupt(path: Path, sql: str) -> None:
    with sqlite3.connect(path) as db:
        db.execute(sql)


@pytest.mark.parametrize("name", ["get", "plan", "apply", "run"])
def test_a_corrupt_resource_row_is_named_by_table_and_key(applied: Path, name: str) -> None:
    _corrupt(
        applied,
        "update resources set document = '{not json' where kind = 'Agent' and name = 'scanner'",
    )
    code, output = cli(f"sqlite:///{applied}", *COMMANDS[name])
    assert (code, one_error_line(output)) == (
        1,
        "error: store row resources(kind=Agent, name=scanner) is not valid JSON: Expecting "
        "property name enclosed in double quotes: line 1 column 2 (char 1) (restore from a "
        "backup or rollback)",
    )


def test_a_corrupt_revision_row_is_named(applied: Path) -> None:
    _corrupt(applied, "update revisions set summary = 'oops' where number = 1")
    code, output = cli(f"sqlite:///{applied}", "history")
    assert (code, one_error_line(output)) == (
        1,
        "error: store row revisions(number=1) summary is not valid JSON: Expecting value: "
        "line 1 column 1 (char 0) (restore from a backup or rollback)",
    )
    _corrupt(applied, "update revisions set snapshot = '[' where number = 1")
    code, output = cli(f"sqlite:///{applied}", "rollback", "1")
    assert code == 1
    assert one_error_line(output).startswith(
        "error: store row revisions(number=1) snapshot is not valid JSON: "
    )


def test_corrupt_run_rows_are_named(applied: Path) -> None:
    with sqlite3.connect(applied) as db:
        (run_id,) = db.execute("select id from runs").fetchone()
    _corrupt(applied, f"update runs set params = '{{' where id = '{run_id}'")
    code, output = cli(f"sqlite:///{applied}", "runs", "list")
    assert (code, one_error_line(output)) == (
        1,
        f"error: store row runs(id={run_id}) params is not valid JSON: Expecting property "
        "name enclosed in double quotes: line 1 column 2 (char 1) (restore from a backup)",
    )
    _corrupt(applied, f"update runs set params = '{{}}' where id = '{run_id}'")
    _corrupt(applied, "update run_steps set status = 'exploded' where name = 'payment'")
    code, output = cli(f"sqlite:///{applied}", "runs", "list")
    assert (code, one_error_line(output)) == (
        1,
        f"error: store row run_steps(run_id={run_id}, name=payment) has an unknown status "
        "'exploded' (restore from a backup)",
    )


DEEP = "[" * 100_000 + "]" * 100_000  # far past the interpreter's recursion limit


def test_stored_documents_nested_past_the_limit_are_named_not_recursed(applied: Path) -> None:
    # Bounded inputs reach the store too: a row nested 100,000 levels deep is checked in one
    # linear pass before json.loads recurses into it (RecursionError / internal error before).
    with sqlite3.connect(applied) as db:
        (run_id,) = db.execute("select id from runs").fetchone()
    _corrupt(applied, f"update runs set params = '{DEEP}' where id = '{run_id}'")
    code, output = cli(f"sqlite:///{applied}", "runs", "list")
    assert (code, one_error_line(output)) == (
        1,
        f"error: store row runs(id={run_id}) params is not valid JSON: JSON nested deeper "
        "than 100 levels (restore from a backup)",
    )
    _corrupt(applied, "update runs set params = '{}'")
    _corrupt(
        applied,
        f"update resources set document = '{DEEP}' where kind = 'Agent' and name = 'scanner'",
    )
    code, output = cli(f"sqlite:///{applied}", "get", "agents")
    assert (code, one_error_line(output)) == (
        1,
        "error: store row resources(kind=Agent, name=scanner) is not valid JSON: JSON nested "
        "deeper than 100 levels (restore from a backup or rollback)",
    )


def test_a_damaged_file_is_one_line(workdir: Path) -> None:
    bad = workdir / "state.db"
    bad.write_bytes(b"not a database at all\n" * 100)
    for name, args in COMMANDS.items():
        code, output = cli(f"sqlite:///{bad}", *args)
        assert (code, one_error_line(output)) == (
            1,
            f"error: the state store sqlite:///{bad} is damaged (file is not a database): "
            "restore it from a backup",
        ), name


@pytest.mark.slow
@pytest.mark.parametrize("command", ["watch", "serve"])
def test_fatal_store_errors_honour_log_format_json(workdir: Path, command: str) -> None:
    bad = workdir / "state.db"
    bad.write_bytes(b"not a database at all\n" * 100)
    args = [command, "manifests"] if command == "watch" else [command]
    args += ["--log-format", "json"]
    done = subprocess.run(
        [sys.executable, "-m", "devskyy.cli", "--state", f"sqlite:///{bad}", *args],
        cwd=workdir,
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON
    expected = (
        f"the state store sqlite:///{bad} is damaged (file is not a database): "
        "restore it from a backup"
    )
    # The boundary's fatal line, or the daemon's own "stopping: …" (watch logs why it ends).
    fatal = [line for line in lines if line["level"] in ("error", "critical")]
    assert len(fatal) == 1, lines
    assert fatal[0]["message"].removeprefix("stopping: ") == expected
