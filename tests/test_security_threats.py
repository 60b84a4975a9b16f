"""Threat detection: blocks grow, expire, are audited, lifted by admins, spare the last admin."""

from __future__ import annotations

import pytest
from security_helpers import manager

from devskyy.adapters.clock import FakeClock
from devskyy.core.threats import (
    FailureCounter,
    ThreatPolicy,
    block_seconds,
    is_blocked,
    judge,
    may_block,
)
from devskyy.errors import PermissionDenied
from devskyy.model.security import BlockRecord
from devskyy.runtime.security import KeyReason

POLICY = ThreatPolicy()


def test_block_length_doubles_and_is_capped() -> None:
    assert [block_seconds(POLICY, n) for n in range(1, 6)] == [300, 600, 1200, 2400, 4800]
    assert block_seconds(POLICY, 30) == 86_400


def test_judge_counts_offences_and_forgives_after_a_day() -> None:
    assert judge(4, None, 1000.0, POLICY).block is False
    first = judge(5, None, 1000.0, POLICY)
    assert (first.block, first.until, first.offences) == (True, 1300.0, 1)
    previous = BlockRecord("key:x", 1300.0, 1)
    second = judge(5, previous, 2000.0, POLICY)
    assert (second.until, second.offences) == (2600.0, 2)
    forgiven = judge(5, previous, 1300.0 + 86_400.0, POLICY)
    assert forgiven.offences == 1


def test_failures_outside_the_window_do_not_count() -> None:
    counter = FailureCounter()
    assert [counter.record("s", t, POLICY) for t in (0.0, 100.0, 200.0, 299.0)] == [1, 2, 3, 4]
    assert counter.record("s", 300.0, POLICY) == 4  # the failure at 0 left the window
    counter.sweep(1000.0, POLICY)
    assert counter.record("s", 1000.0, POLICY) == 1


def test_blocks_expire_by_themselves() -> None:
    record = BlockRecord("source:x", 500.0, 1)
    assert is_blocked(record, 499.999)
    assert not is_blocked(record, 500.0)
    assert not is_blocked(None, 0.0)
    assert may_block(False, 0)
    assert may_block(True, 1)
    assert not may_block(True, 0)


def _bad(n: int) -> str:
    return f"not-a-key-{n}"


def test_auth_failures_block_the_source_then_expire_then_grow(clock: FakeClock) -> None:
    sm = manager(clock)
    sm.generate_api_key("root", "admin")
    good = sm.generate_api_key("svc", "service")
    for n in range(4):
        assert sm.validate_api_key(_bad(n), source="6.6.6.6").reason is KeyReason.MALFORMED
    assert sm.validate_api_key(good.key, source="6.6.6.6").valid
    assert sm.validate_api_key(_bad(5), source="6.6.6.6").reason is KeyReason.MALFORMED
    # Fifth failure: the source is blocked for attempts without a working key; a good
    # key from the same address (a shared proxy or NAT) is judged on its own.
    check = sm.validate_api_key(_bad(6), source="6.6.6.6")
    assert (check.valid, check.reason, check.detail) == (
        False,
        KeyReason.BLOCKED,
        "too many failures",
    )
    assert sm.validate_api_key(good.key, source="6.6.6.6").valid
    assert sm.validate_api_key(good.key, source="10.0.0.1").valid
    blocked = sm.get_audit_log(event_type="threat.blocked")
    assert [(e["resource"], e["details"]["offence"], e["details"]["seconds"]) for e in blocked] == [
        ("source:6.6.6.6", 1, 300.0)
    ]
    clock.advance(299.9)
    assert sm.validate_api_key(_bad(7), source="6.6.6.6").reason is KeyReason.BLOCKED
    clock.advance(0.1)
    assert sm.validate_api_key(_bad(7), source="6.6.6.6").reason is KeyReason.MALFORMED
    for n in range(5):
        sm.validate_api_key(_bad(n), source="6.6.6.6")
    blocked = sm.get_audit_log(event_type="threat.blocked")
    assert [e["details"]["seconds"] for e in blocked] == [300.0, 600.0]
    summary = sm.get_security_summary()
    assert [b["subject"] for b in summary["active_blocks"]] == ["source:6.6.6.6"]
    assert summary["active_blocks"][0]["offences"] == 2


def test_denials_with_a_key_block_that_key(clock: FakeClock) -> None:
    sm = manager(clock)
    sm.generate_api_key("root", "admin")
    key = sm.generate_api_key("svc", "service")
    for _ in range(5):
        assert not sm.check_permission("svc", "keys", "write", presented_key_id=key.key_id)
    check = sm.validate_api_key(key.key)
    assert (check.valid, check.reason, check.principal) == (False, KeyReason.BLOCKED, "svc")
    assert not sm.check_permission("svc", "agents", "read", presented_key_id=key.key_id)
    assert sm.list_api_keys("svc")[0]["state"] == "blocked"
    # A fresh key of the same principal is not affected: the key was blocked, not a name.
    other = sm.generate_api_key("svc", "service")
    assert sm.validate_api_key(other.key).valid


def test_admin_unblocks_and_non_admin_cannot(clock: FakeClock) -> None:
    sm = manager(clock)
    sm.generate_api_key("root", "admin")
    sm.generate_api_key("ops", "operator")
    key = sm.generate_api_key("svc", "service")
    for _ in range(5):
        sm.check_permission("svc", "keys", "write", presented_key_id=key.key_id)
    assert sm.validate_api_key(key.key).reason is KeyReason.BLOCKED
    with pytest.raises(PermissionDenied, match="no rule allows ops to admin security"):
        sm.unblock("svc", granted_by="ops")
    assert sm.unblock("svc", granted_by="root") == [f"key:{key.key_id}"]
    assert sm.validate_api_key(key.key).valid
    assert sm.unblock("svc") == []
    events = sm.get_audit_log(event_type="threat.unblocked")
    assert [(e["actor"], e["resource"]) for e in events] == [("root", f"key:{key.key_id}")]


def test_the_last_admin_is_never_locked_out(clock: FakeClock) -> None:
    sm = manager(clock)
    root = sm.generate_api_key("root", "admin")
    # An admin is denied only an unknown permission; five of those would block a key.
    for _ in range(5):
        sm.check_permission("root", "agents", "delete", presented_key_id=root.key_id)
    assert sm.validate_api_key(root.key).valid
    refused = sm.get_audit_log(event_type="threat.block_refused")
    assert [e["details"]["reason"] for e in refused] == ["would lock out the last admin"]
    # Even from a blocked source, the last admin's own key gets in.
    for n in range(5):
        sm.validate_api_key(_bad(n), source="127.0.0.1")
    assert sm.validate_api_key(root.key, source="127.0.0.1").valid
    # With a second admin, the first can be blocked.
    sm.generate_api_key("root2", "admin")
    for _ in range(5):
        sm.check_permission("root", "agents", "delete", presented_key_id=root.key_id)
    assert sm.validate_api_key(root.key).reason is KeyReason.BLOCKED
    assert not sm.validate_api_key(root.key, source="127.0.0.1").valid


def test_a_victim_cannot_be_locked_out_by_someone_presenting_its_name(clock: FakeClock) -> None:
    sm = manager(clock)
    sm.generate_api_key("root", "admin")
    victim = sm.generate_api_key("victim", "operator")
    victim_check = sm.validate_api_key(victim.key)
    assert victim_check.valid
    body = f"dsk_{victim.key_id}_"
    for n in range(20):
        # wrong secrets for the victim's key id, from the attacker's address
        sm.validate_api_key(body + str(n) * 39, source="6.6.6.6")
        sm.validate_api_key(f"{body}{'B' * 33}{n:06d}", source="6.6.6.6")
        # denials asked about the victim by name, or claiming its key id
        sm.check_permission("victim", "keys", "admin")
        sm.check_permission("attacker", "keys", "admin", presented_key_id=victim.key_id)
    assert sm.validate_api_key(victim.key, source="10.0.0.2").valid
    assert sm.validate_api_key(victim.key).valid
    assert sm.check_permission("victim", "agents", "write", presented_key_id=victim.key_id)
    assert [b["subject"] for b in sm.get_security_summary()["active_blocks"]] == ["source:6.6.6.6"]
