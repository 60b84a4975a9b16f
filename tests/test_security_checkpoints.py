"""Audit truncation is detected (issue 11.6, 19.5): checkpoints kept outside the store.

Each attack is the one that passed ``devskyy audit --verify`` before: deleting the newest
events with the head row, deleting the head row alone, emptying or dropping the audit
table, and a revision with no ``manifests.applied`` event.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from devskyy.adapters.db import open_engine
from devskyy.cli import main
from devskyy.core.audit import Checkpoint, check_checkpoint, parse_checkpoints

ROOT = Path(__file__).resolve().parents[1]


class Cli:
    def __init__(self, state_url: str, tmp_path: Path) -> None:
        self.url = state_url
        self.tmp = tmp_path
        self.runner = CliRunner()
        roles = tmp_path / "manifests"
        shutil.copytree(ROOT / "manifests" / "roles", roles / "roles")
        applied = self("apply", str(roles))
        assert applied.exit_code == 0, applied.output

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(main, ["--state", self.url, *args], catch_exceptions=False)

    def sql(self, statement: str) -> None:
        engine = open_engine(self.url)
        try:
            with engine.begin() as conn:
                conn.execute(text(statement))
        finally:
            engine.dispose()

    def checkpoint_file(self) -> tuple[Path, dict[str, object]]:
        result = self("audit", "checkpoint", "-o", "json")
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert len(lines) == 1  # one JSON line, to append to a file kept elsewhere
        mark = json.loads(lines[0])
        path = self.tmp / "checkpoints.jsonl"
        path.write_text(result.stdout)
        return path, mark


@pytest.fixture
def cli(state_url: str, tmp_path: Path) -> Cli:
    return Cli(state_url, tmp_path)


def test_checkpoint_prints_seq_hash_at_as_one_json_line(cli: Cli) -> None:
    for name in ("a", "b"):
        assert cli("keys", "create", name, "--role", "guest").exit_code == 0
    _, mark = cli.checkpoint_file()
    assert sorted(mark) == ["at", "hash", "seq"]
    listed = json.loads(cli("audit", "-o", "json", "--limit", "1000").stdout)
    assert mark["seq"] == listed[-1]["seq"] == len(listed)
    assert mark["hash"] == listed[-1]["hash"]
    # When it was taken, in RFC 3339 UTC with Z, as every time the CLI prints in JSON.
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(mark["at"]))
    assert mark["at"] >= listed[-1]["time"]
    table = cli("audit", "checkpoint", "-o", "table")
    assert table.stdout.startswith(f"checkpoint: event {mark['seq']}, hash {mark['hash']}, at ")


def test_verify_with_an_intact_chain_and_its_checkpoint_passes(cli: Cli) -> None:
    cli("keys", "create", "a", "--role", "guest")
    path, mark = cli.checkpoint_file()
    cli("keys", "create", "b", "--role", "guest")  # the chain may grow past a checkpoint
    ok = cli("audit", "--verify", "--checkpoint", str(path))
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith(f"audit log intact: {int(str(mark['seq'])) + 1} event(s), head ")


def test_deleting_the_newest_events_and_the_head_is_named_by_range(cli: Cli) -> None:
    for name in ("a", "b", "c"):
        cli("keys", "create", name, "--role", "guest")
    path, mark = cli.checkpoint_file()
    seq = int(str(mark["seq"]))
    # The attack: cut the last two events and rewrite the head to the new end.
    cli.sql(f"DELETE FROM audit_events WHERE seq > {seq - 2}")
    cli.sql(
        f"UPDATE audit_head SET seq = {seq - 2}, "
        f"hash = (SELECT hash FROM audit_events WHERE seq = {seq - 2})"
    )
    assert cli("audit", "--verify").exit_code == 0  # without the checkpoint: consistent
    broken = cli("audit", "--verify", "--checkpoint", str(path))
    assert broken.exit_code == 1
    assert broken.stdout == (
        f"audit log broken: events {seq - 1}-{seq} are missing: the checkpoint of "
        f"{mark['at']} recorded event {seq} (hash {str(mark['hash'])[:16]}), "
        f"the log ends at event {seq - 2}\n"
    )


def test_deleting_the_head_row_fails_verify(cli: Cli) -> None:
    cli("keys", "create", "a", "--role", "guest")
    path, _ = cli.checkpoint_file()
    cli.sql("DELETE FROM audit_head")
    broken = cli("audit", "--verify")
    assert broken.exit_code == 1
    assert broken.stdout == (
        "audit log broken: the audit head row is missing (deleted behind its back)\n"
    )
    assert cli("audit", "--verify", "--checkpoint", str(path)).exit_code == 1


def test_emptying_the_whole_table_fails_verify(cli: Cli) -> None:
    path, mark = cli.checkpoint_file()
    cli.sql("DELETE FROM audit_events")
    cli.sql("DELETE FROM audit_head")
    broken = cli("audit", "--verify")
    assert broken.exit_code == 1
    assert broken.stdout == (
        "audit log broken: the audit log is empty but the store has 1 revision(s)\n"
    )
    with_mark = cli("audit", "--verify", "--checkpoint", str(path), "-o", "json")
    assert with_mark.exit_code == 1
    assert json.loads(with_mark.stdout)["problem"].startswith(
        f"events 1-{mark['seq']} are missing" if mark["seq"] != 1 else "event 1 is missing"
    )


def test_dropping_the_audit_table_fails_verify(cli: Cli) -> None:
    cli.sql("DROP TABLE audit_events")
    broken = cli("audit", "--verify")
    assert broken.exit_code == 1
    assert broken.stdout in (
        "audit log broken: the audit tables are missing or unreadable\n",
        # a store that recreates missing tables on open finds the log empty instead
        "audit log broken: the audit log is empty but the store has 1 revision(s)\n",
    )


def test_a_revision_without_its_event_fails_verify(cli: Cli, tmp_path: Path) -> None:
    # A revision committed with its event removed (or never written): the chain itself
    # is intact, so only the per-revision check sees it.
    cli.sql(
        "INSERT INTO revisions (number, created_at, source, summary, snapshot) "
        "VALUES (2, '2026-01-01 00:00:00', 'x', '{}', '{}')"
    )
    broken = cli("audit", "--verify")
    assert broken.exit_code == 1
    assert broken.stdout == (
        "audit log broken: revision(s) 2 have no manifests.applied event in the audit log\n"
    )


def test_checkpoint_option_needs_verify_and_a_readable_file(cli: Cli, tmp_path: Path) -> None:
    path, _ = cli.checkpoint_file()
    alone = cli("audit", "--checkpoint", str(path))
    assert alone.exit_code == 2
    assert "--checkpoint goes with --verify" in alone.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"seq": 1, "hash": "00"}\n')
    result = cli("audit", "--verify", "--checkpoint", str(bad))
    assert result.exit_code == 1
    assert result.stderr == f"error: {bad}:1: not a checkpoint: hash must be 64 hex characters\n"
    missing = cli("audit", "--verify", "--checkpoint", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 1
    nope = tmp_path / "nope.jsonl"
    assert missing.stderr.startswith(f"error: cannot read checkpoint file {nope}: ")


def test_parse_checkpoints_reads_serve_and_watch_logs() -> None:
    digest = "ab" * 32
    log = "\n".join(
        [
            '{"time": "t", "level": "INFO", "message": "serving", "url": "http://x"}',
            f'{{"time": "t", "message": "audit checkpoint", "seq": 4, "hash": "{digest}", '
            '"at": "2026-01-01T00:00:00+00:00"}',
            f'2026-01-01 INFO devskyy.security: audit checkpoint {{"seq": 5, "hash": "{digest}",'
            ' "at": "later"}',
            "plain text line",
        ]
    )
    assert parse_checkpoints(log, "serve.log") == (
        Checkpoint(4, digest, "2026-01-01T00:00:00+00:00"),
        Checkpoint(5, digest, "later"),
    )
    with pytest.raises(ValueError, match=r"^empty.log: no checkpoint found"):
        parse_checkpoints("nothing here\n", "empty.log")
    assert check_checkpoint([], Checkpoint(0, "0" * 64, "t")) is None
