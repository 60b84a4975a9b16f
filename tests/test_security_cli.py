"""The security commands through click's CliRunner: output streams and exit codes."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from devskyy.adapters.db import open_engine
from devskyy.adapters.security_store import SqlSecurityStore
from devskyy.cli import main
from devskyy.core.keys import ParsedKey, looks_like_key, parse_key
from devskyy.model.security import BlockRecord

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def run(state_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    outputs: list[Result] = []

    def invoke(*args: str) -> Result:
        result = runner.invoke(main, ["--state", state_url, *args], catch_exceptions=False)
        outputs.append(result)
        return result

    roles = tmp_path / "manifests"
    shutil.copytree(ROOT / "manifests" / "roles", roles / "roles")
    applied = invoke("apply", str(roles))
    assert applied.exit_code == 0, applied.output
    invoke.outputs = outputs  # type: ignore[attr-defined]
    return invoke


def test_keys_create_prints_the_key_alone_on_stdout(run) -> None:  # type: ignore[no-untyped-def]
    result = run("keys", "create", "ci", "--role", "service")
    assert result.exit_code == 0
    assert looks_like_key(result.stdout.strip())
    assert result.stdout == result.stdout.strip() + "\n"
    key_id = result.stdout.split("_")[1]
    assert result.stderr.startswith(f"created key {key_id} for ci (role service), expires ")
    assert result.stderr.endswith("; it is shown only this once\n")


def test_keys_create_unknown_role_fails(run) -> None:  # type: ignore[no-untyped-def]
    result = run("keys", "create", "ci", "--role", "root")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: role 'root' does not exist (known: admin, analyst, guest, operator, service)\n"
    )


def test_keys_list_rotate_revoke(run) -> None:  # type: ignore[no-untyped-def]
    first = run("keys", "create", "ci", "--role", "guest").stdout.strip()
    key_id = first.split("_")[1]
    listed = run("keys", "list", "-o", "json")
    assert listed.exit_code == 0
    rows = json.loads(listed.stdout)
    assert [(r["key_id"], r["principal"], r["role"], r["state"]) for r in rows] == [
        (key_id, "ci", "guest", "active")
    ]
    table = run("keys", "list").stdout.splitlines()
    assert table[0].split() == [
        "KEY",
        "ID",
        "PRINCIPAL",
        "ROLE",
        "STATE",
        "CREATED",
        "EXPIRES",
        "LAST",
        "USED",
    ]
    assert table[1].split()[:4] == [key_id, "ci", "guest", "active"]
    rotated = run("keys", "rotate", key_id, "--grace", "0")
    assert rotated.exit_code == 0
    new_key = rotated.stdout.strip()
    assert looks_like_key(new_key)
    new_id = new_key.split("_")[1]
    assert rotated.stderr == (
        f"rotated {key_id} -> {new_id} for ci (role guest); "
        "the old key works for 0 more second(s)\n"
    )
    states = {r["key_id"]: r["state"] for r in json.loads(run("keys", "list", "-o", "json").stdout)}
    assert states == {key_id: "rotated", new_id: "active"}
    revoked = run("keys", "revoke", new_id)
    assert (revoked.exit_code, revoked.stdout) == (0, f"key {new_id} revoked\n")
    again = run("keys", "revoke", new_id)
    assert (again.exit_code, again.stdout) == (0, f"key {new_id} was already revoked\n")
    missing = run("keys", "revoke", "zzzzzzzzzzzz")
    assert (missing.exit_code, missing.stderr) == (1, "error: no API key with id 'zzzzzzzzzzzz'\n")
    assert run("keys", "list", "--principal", "nobody").stdout == "No API keys.\n"


def test_can_i_exit_codes(run) -> None:  # type: ignore[no-untyped-def]
    yes = run("can-i", "scanner", "write", "database")
    assert (yes.exit_code, yes.stdout, yes.stderr) == (
        0,
        "yes\n",
        "role service rules[2]: database\n",
    )
    no = run("can-i", "scanner", "write", "keys")
    assert (no.exit_code, no.stdout, no.stderr) == (
        1,
        "no\n",
        "no rule allows scanner to write keys\n",
    )
    run("keys", "create", "alice", "--role", "admin")
    assert run("can-i", "alice", "admin", "keys").exit_code == 0
    assert run("can-i", "alice", "fly", "keys").exit_code == 2  # not a permission
    # can-i answers a question; it is not an access and is not audited
    types = [e["event_type"] for e in json.loads(run("audit", "-o", "json").stdout)]
    assert [t for t in types if t != "manifests.applied"] == ["key.created"]


def test_audit_filters_and_verify(run, state_url: str) -> None:  # type: ignore[no-untyped-def]
    for name in ("a", "b", "c"):
        run("keys", "create", name, "--role", "guest")
    events = json.loads(run("audit", "-o", "json", "--limit", "2").stdout)
    assert [e["details"]["principal"] for e in events] == ["b", "c"]
    only = json.loads(run("audit", "--type", "key.revoked", "-o", "json").stdout)
    assert only == []
    assert run("audit", "--agent", "nobody").stdout == "No audit events.\n"
    every = json.loads(run("audit", "-o", "json").stdout)
    created = [e["seq"] for e in every if e["event_type"] == "key.created"]
    table = run("audit").stdout.splitlines()
    assert table[0].split() == ["SEQ", "TIME", "ACTOR", "TYPE", "RESOURCE", "OUTCOME"]
    assert len(table) == len(every) + 1
    ok = run("audit", "--verify")
    assert ok.exit_code == 0
    assert ok.stdout.startswith(f"audit log intact: {len(every)} event(s), head ")
    engine = open_engine(state_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_events SET actor = 'mallory' WHERE seq = :s"), {"s": created[1]}
        )
    engine.dispose()
    broken = run("audit", "--verify")
    assert broken.exit_code == 1
    assert broken.stdout.startswith(
        f"audit log broken: event {created[1]} (key.created by mallory at "
    )
    assert broken.stdout.endswith(") was altered\n")
    as_json = json.loads(run("audit", "--verify", "-o", "json").stdout)
    assert (as_json["ok"], as_json["checked"]) == (False, created[1] - 1)


def test_unblock(run, state_url: str) -> None:  # type: ignore[no-untyped-def]
    engine = open_engine(state_url)
    SqlSecurityStore(engine).put_block(BlockRecord("key:abcdefghijkl", 4e9, 1, "test", "svc"))
    engine.dispose()
    lifted = run("unblock", "svc")
    assert (lifted.exit_code, lifted.stdout) == (0, "unblocked key:abcdefghijkl\n")
    assert run("unblock", "svc").stdout == "nothing blocked for svc\n"
    events = json.loads(run("audit", "--type", "threat.unblocked", "-o", "json").stdout)
    assert [(e["actor"], e["resource"]) for e in events] == [("local", "key:abcdefghijkl")]


def test_no_secret_in_any_output_log_or_error_after_creation(  # type: ignore[no-untyped-def]
    run, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = run("keys", "create", "ci", "--role", "operator").stdout.strip()
    parsed = parse_key(key)
    assert isinstance(parsed, ParsedKey)
    creation = len(run.outputs)
    key_id = parsed.key_id
    run("keys", "list")
    run("keys", "list", "-o", "json")
    run("keys", "list", "-o", "yaml")
    run("audit")
    run("audit", "-o", "json")
    run("audit", "--verify")
    run("can-i", "ci", "write", "agents")
    pasted = run("keys", "create", key, "--role", "guest")  # the key pasted where a name goes
    assert (pasted.exit_code, pasted.stderr) == (
        1,
        "error: principal looks like an API key; give a name, never a key\n",
    )
    pasted = run("keys", "revoke", key)  # the key pasted where a key id goes
    assert (pasted.exit_code, pasted.stderr) == (
        1,
        "error: not a key id (12 characters 0-9 a-z, as `keys list` shows)\n",
    )
    run("keys", "rotate", key_id)
    run("unblock", key)
    run("keys", "revoke", key_id)
    run("audit", "-o", "json", "--limit", "1000")
    later = run.outputs[creation:]
    assert any(key_id in r.output for r in later)  # the outputs are real
    for result in later:
        assert key not in result.output
        assert parsed.secret not in result.output
    assert parsed.secret not in caplog.text
