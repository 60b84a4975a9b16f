"""SecurityManager: key lifecycle, permissions, grants, no escalation, secrets never stored."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from security_helpers import manager, seeded_bytes, shipped_roles
from sqlalchemy import inspect, text

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.db import open_engine
from devskyy.adapters.security_memory import MemorySecurityStore
from devskyy.core.keys import ParsedKey, checksum, parse_key
from devskyy.errors import NotFound, PermissionDenied, SecurityError
from devskyy.model.resources import ResourceSet
from devskyy.runtime.security import (
    DEFAULT_KEY_TTL,
    KeyCheck,
    KeyReason,
    SecurityManager,
    SecurityRole,
)

DAY = 86_400.0


def test_generate_then_validate_returns_principal_role_and_key_id(clock: FakeClock) -> None:
    sm = manager(clock)
    new = sm.generate_api_key("my_agent", SecurityRole.SERVICE)
    assert new.principal == "my_agent"
    assert new.role == "service"
    assert new.expires == clock.now() + 90 * DAY
    assert new.key not in repr(new)
    assert new.key not in str(new)
    check = sm.validate_api_key(new.key)
    assert check == KeyCheck(
        True, "my_agent", "service", new.key_id, clock.now() + DEFAULT_KEY_TTL, detail="active"
    )
    # The guide's flow: the key's role decides what the agent may do.
    assert sm.check_permission("my_agent", "database", "write")
    assert not sm.check_permission("my_agent", "keys", "write")


def test_unknown_role_is_refused_and_custom_roles_work(clock: FakeClock) -> None:
    sm = manager(clock)
    with pytest.raises(NotFound, match="role 'root' does not exist"):
        sm.generate_api_key("x", "root")
    assert sm.roles() == ["admin", "analyst", "guest", "operator", "service"]


def test_validate_reason_codes(clock: FakeClock) -> None:
    sm = manager(clock)
    new = sm.generate_api_key("a", "guest")
    assert sm.validate_api_key("nonsense").reason is KeyReason.MALFORMED
    assert sm.validate_api_key("nonsense").detail == "missing the 'dsk_' prefix"
    other = manager(FakeClock(), random_bytes=seeded_bytes(99)).generate_api_key("b", "guest")
    unknown = sm.validate_api_key(other.key)
    assert (unknown.valid, unknown.reason, unknown.key_id) == (
        False,
        KeyReason.UNKNOWN,
        other.key_id,
    )
    # A right key id with a wrong (but well-formed) secret is "unknown" too: nothing leaks.
    body = f"dsk_{new.key_id}_{'A' * 33}"
    forged = sm.validate_api_key(body + checksum(body))
    assert (forged.valid, forged.reason, forged.principal) == (False, KeyReason.UNKNOWN, None)
    assert sm.validate_api_key(new.key).valid


def test_expiry_is_exact(clock: FakeClock) -> None:
    sm = manager(clock)
    new = sm.generate_api_key("a", "guest", expires_in=100.0)
    clock.advance(99.999)
    assert sm.validate_api_key(new.key).valid
    clock.advance(0.001)
    check = sm.validate_api_key(new.key)
    assert (check.valid, check.reason, check.detail) == (False, KeyReason.EXPIRED, "key expired")


def test_default_expiry_is_90_days(clock: FakeClock) -> None:
    sm = manager(clock)
    new = sm.generate_api_key("a", "guest")
    clock.advance(90 * DAY - 1)
    assert sm.validate_api_key(new.key).valid
    clock.advance(1)
    assert sm.validate_api_key(new.key).reason is KeyReason.EXPIRED


def test_revoke_is_immediate_and_idempotent(clock: FakeClock) -> None:
    sm = manager(clock)
    new = sm.generate_api_key("a", "operator")
    assert sm.check_permission("a", "agents", "write")
    assert sm.revoke_api_key(new.key_id) is True
    check = sm.validate_api_key(new.key)
    assert (check.valid, check.reason) == (False, KeyReason.REVOKED)
    # The revoked key's role no longer counts for the principal either.
    assert not sm.check_permission("a", "agents", "write")
    assert sm.revoke_api_key(new.key_id) is False
    with pytest.raises(NotFound, match="no API key with id 'zzzzzzzzzzzz'"):
        sm.revoke_api_key("zzzzzzzzzzzz")


def test_rotation_grace_period_is_exact(clock: FakeClock) -> None:
    sm = manager(clock)
    old = sm.generate_api_key("a", "service")
    clock.advance(10)
    new = sm.rotate_api_key(old.key_id, grace_seconds=3600)
    assert new.key_id != old.key_id
    assert (new.principal, new.role) == ("a", "service")
    assert sm.validate_api_key(new.key).valid
    clock.advance(3599.999)
    check = sm.validate_api_key(old.key)
    assert (check.valid, check.detail, check.expires) == (True, "grace", clock.now() + 0.001)
    clock.advance(0.001)
    check = sm.validate_api_key(old.key)
    assert (check.valid, check.reason, check.detail) == (
        False,
        KeyReason.EXPIRED,
        "rotated; grace period over",
    )
    assert sm.validate_api_key(new.key).valid
    listed = {k["key_id"]: k for k in sm.list_api_keys("a")}
    assert listed[new.key_id]["rotated_from"] == old.key_id
    assert listed[old.key_id]["state"] == "rotated"
    with pytest.raises(SecurityError, match=f"key {old.key_id} is rotated and cannot be rotated"):
        sm.rotate_api_key(old.key_id)


def test_rotation_default_grace_is_24h_and_zero_for_compromised(clock: FakeClock) -> None:
    sm = manager(clock)
    old = sm.generate_api_key("a", "service")
    sm.rotate_api_key(old.key_id)
    clock.advance(DAY - 1)
    assert sm.validate_api_key(old.key).valid
    clock.advance(1)
    assert not sm.validate_api_key(old.key).valid
    leaked = sm.generate_api_key("b", "service")
    sm.rotate_api_key(leaked.key_id, grace_seconds=0)
    assert sm.validate_api_key(leaked.key).reason is KeyReason.EXPIRED


def test_last_used_time_is_recorded(clock: FakeClock) -> None:
    sm = manager(clock)
    new = sm.generate_api_key("a", "guest")
    assert sm.list_api_keys()[0]["last_used"] is None
    clock.advance(42)
    sm.validate_api_key(new.key)
    assert sm.list_api_keys()[0]["last_used"] == "2023-11-14T22:14:02.000000+00:00"


def test_grants_are_recorded_and_revocable(clock: FakeClock) -> None:
    sm = manager(clock)
    assert not sm.check_permission("my_agent", "database", "write")
    assert sm.grant_resource_access("database", "my_agent", "write") is True
    assert sm.grant_resource_access("database", "my_agent", "write") is False
    assert sm.check_permission("my_agent", "database", "write")
    assert not sm.check_permission("my_agent", "database", "read")
    assert sm.get_security_summary()["grants"] == 1
    assert sm.revoke_resource_access("database", "my_agent", "write") is True
    assert sm.revoke_resource_access("database", "my_agent", "write") is False
    assert not sm.check_permission("my_agent", "database", "write")
    types = [e["event_type"] for e in sm.get_audit_log(agent_name="local")]
    assert types == ["grant.added", "grant.revoked"]


def test_grant_default_permission_is_read(clock: FakeClock) -> None:
    sm = manager(clock)
    sm.grant_resource_access(resource="database", agent_name="my_agent")
    assert sm.check_permission("my_agent", "database", "read")
    assert not sm.check_permission("my_agent", "database", "write")
    with pytest.raises(SecurityError, match="unknown permission 'all'"):
        sm.grant_resource_access("database", "my_agent", "all")


def test_no_escalation_for_keys_grants_and_rotation(clock: FakeClock) -> None:
    sm = manager(clock)
    sm.generate_api_key("root", "admin")
    sm.generate_api_key("ops", "operator")
    sm.generate_api_key("viewer", "analyst")
    # operator has no write on keys: may not create any key.
    with pytest.raises(PermissionDenied, match="no rule allows ops to write keys"):
        sm.generate_api_key("x", "guest", granted_by="ops")
    # give ops the right to manage keys, still not an admin key
    sm.grant_resource_access("keys", "ops", "write")
    assert sm.generate_api_key("x", "service", granted_by="ops").role == "service"
    with pytest.raises(
        PermissionDenied,
        match=r"^escalation refused: ops does not hold admin on \* "
        r"\(to issue a 'admin' key for y\)$",
    ):
        sm.generate_api_key("y", "admin", granted_by="ops")
    with pytest.raises(
        PermissionDenied,
        match=r"^escalation refused: viewer does not hold write on keys \(to grant it\)$",
    ):
        sm.grant_resource_access("keys", "viewer2", "write", granted_by="viewer")
    assert sm.grant_resource_access("agents/scanner", "viewer2", "read", granted_by="viewer")
    admin_key = sm.list_api_keys("root")[0]["key_id"]
    with pytest.raises(PermissionDenied):
        sm.rotate_api_key(admin_key, granted_by="ops")
    assert sm.generate_api_key("z", "admin", granted_by="root").role == "admin"


def test_permission_decisions_are_audited(clock: FakeClock) -> None:
    sm = manager(clock)
    assert sm.check_permission("scanner", "agents/fixer", "execute")
    assert not sm.check_permission("scanner", "keys", "read")
    events = sm.get_audit_log(agent_name="scanner")
    assert [(e["event_type"], e["resource"], e["outcome"]) for e in events] == [
        ("permission.allowed", "agents/fixer", "success"),
        ("permission.denied", "keys", "denied"),
    ]
    assert events[0]["details"] == {
        "permission": "execute",
        "rule": "role service rules[0]: agents/*",
    }


def test_roles_reload_after_manifests_applied(clock: FakeClock) -> None:
    live = {"set": shipped_roles()}
    store = MemorySecurityStore()
    sm = SecurityManager(store, clock, lambda: live["set"])
    assert sm.check_permission("scanner", "database", "write")
    live["set"] = ResourceSet(tuple(m for m in live["set"] if m.kind == "Role"))
    assert sm.check_permission("scanner", "database", "write")  # no new revision seen yet
    sm.audit_manifests_applied(7)
    assert not sm.check_permission("scanner", "database", "write")
    applied = sm.get_audit_log(event_type="manifests.applied")
    assert [(e["actor"], e["details"]) for e in applied] == [("reconciler", {"revision": 7})]
    live["set"] = shipped_roles()
    assert not sm.check_permission("scanner", "database", "write")  # no time-based reload
    store.revisions = [7, 8]  # another process applied revision 8: the next call sees it
    assert sm.check_permission("scanner", "database", "write")


def test_audit_log_limit_is_capped_and_filters_work(clock: FakeClock) -> None:
    sm = manager(clock)
    for _ in range(1100):
        sm.check_permission("guest1", "agents", "read")
    assert len(sm.get_audit_log(limit=5000)) == 1000
    assert len(sm.get_audit_log(agent_name="guest1", limit=10)) == 10
    assert sm.get_audit_log(agent_name="nobody") == []
    clock.advance(10)
    sm.check_permission("late", "agents", "read")
    assert [e["actor"] for e in sm.get_audit_log(since=clock.now())] == ["late"]
    with pytest.raises(SecurityError, match="unknown event type 'nope'"):
        sm.get_audit_log(event_type="nope")
    with pytest.raises(SecurityError, match="limit must be at least 1"):
        sm.get_audit_log(limit=0)


def test_summary(clock: FakeClock) -> None:
    sm = manager(clock)
    a = sm.generate_api_key("a", "guest")
    b = sm.generate_api_key("b", "guest", expires_in=5)
    sm.revoke_api_key(a.key_id)
    clock.advance(6)
    sm.validate_api_key(b.key)
    summary = sm.get_security_summary()
    assert summary["api_keys"] == {"total": 2, "expired": 1, "revoked": 1}
    assert summary["principals"] == 2
    assert summary["since_start"]["auth_failures"] == 1
    assert summary["active_blocks"] == []


def _secret_of(key: str) -> str:
    parsed = parse_key(key)
    assert isinstance(parsed, ParsedKey)
    return parsed.secret


def test_only_hashes_are_stored(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"sqlite:///{tmp_path / 'state.db'}"
    engine = open_engine(url)
    sm = SecurityManager(engine, clock, shipped_roles)
    keys = [sm.generate_api_key(f"agent{i}", "service") for i in range(3)]
    rotated = sm.rotate_api_key(keys[0].key_id)
    keys.append(rotated)
    for key in keys:
        assert sm.validate_api_key(key.key).valid
        sm.validate_api_key(key.key[:-1] + "0")
    sm.check_permission("agent1", "database", "write", presented_key_id=keys[1].key_id)
    sm.close()
    engine.dispose()
    secrets_ = [k.key for k in keys] + [_secret_of(k.key) for k in keys]
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("state.db"))
    engine = open_engine(url)
    with engine.connect() as conn:
        dump: list[str] = []
        for table in inspect(conn).get_table_names():
            dump.extend(repr(tuple(r)) for r in conn.execute(text(f'SELECT * FROM "{table}"')))
    engine.dispose()
    text_dump = "\n".join(dump)
    assert keys[0].key_id in text_dump  # the dump is real
    for secret in secrets_:
        assert secret.encode() not in raw
        assert secret not in text_dump
        assert secret not in caplog.text


def test_a_request_gets_only_the_role_of_the_key_it_presented(clock: FakeClock) -> None:
    sm = manager(clock)
    weak = sm.generate_api_key("alice", "guest")
    strong = sm.generate_api_key("alice", "admin")
    other = sm.generate_api_key("bob", "admin")
    assert not sm.check_permission("alice", "keys", "write", presented_key_id=weak.key_id)
    assert sm.check_permission("alice", "keys", "write", presented_key_id=strong.key_id)
    assert sm.check_permission("alice", "agents", "read", presented_key_id=weak.key_id)
    # someone else's key id lends no role
    assert not sm.check_permission("alice", "agents/x", "read", presented_key_id=other.key_id)
    # by name (the guide's call), every usable key of the principal counts
    assert sm.check_permission("alice", "keys", "write")
    sm.revoke_api_key(strong.key_id)
    assert not sm.check_permission("alice", "keys", "write")
    assert not sm.check_permission("alice", "keys", "write", presented_key_id=strong.key_id)
