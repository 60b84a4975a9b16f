"""The security hot path's shortcuts give exactly what the plain computations give.

The audit chain formats each event's time and canonical JSON by hand and caches the
date of each second; the key index caches a principal's key roles until one of its
keys changes state. Hashes already stored must keep verifying, so the hand-made text
is compared with ``json.dumps`` and ``datetime.isoformat`` on many inputs.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.security_memory import MemorySecurityStore
from devskyy.adapters.security_store import details_json
from devskyy.core.audit import GENESIS, _event_payload, chain, iso, record_hash
from devskyy.core.rbac import CompiledRule, Policy, matches
from devskyy.model.resources import ResourceSet
from devskyy.model.security import (
    ApiKeyRecord,
    AuditEvent,
    BlockRecord,
    EventType,
    Grant,
    Outcome,
)
from devskyy.runtime.security import SecurityManager
from devskyy.runtime.security.key_index import KeyIndex


def _reference_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


def _reference_payload(
    ts: float, actor: str, kind: str, resource: str, outcome: str, details: Any
) -> str:
    body = {
        "time": _reference_iso(ts),
        "actor": actor,
        "event_type": kind,
        "resource": resource,
        "outcome": outcome,
        "details": details,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def test_iso_matches_datetime_on_rounding_edges() -> None:
    rng = random.Random(7)
    base_bits = struct.unpack("<Q", struct.pack("<d", 1.7e9))[0]
    cases = [1.7e9 + rng.random() * 1e7 for _ in range(20_000)]
    cases += [1.7e9 + s + (m + 0.5) / 1e6 for s in range(20) for m in range(0, 10**6, 49_999)]
    cases += [1.7e9 + s + 0.9999995 for s in range(50)]
    cases += [
        struct.unpack("<d", struct.pack("<Q", base_bits + rng.randrange(1 << 30)))[0]
        for _ in range(20_000)
    ]
    cases += [0.0, 1e-7, 5e-7, 1.5e-6, 2.5e-6, 1234567890.9999999, 1.0e9 + 0.0000005]
    assert [c for c in cases if iso(c) != _reference_iso(c)] == []


@given(
    st.floats(min_value=0, max_value=4e9, allow_nan=False),
    st.text(),
    st.text(),
    st.dictionaries(
        st.text(),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner),
            max_leaves=6,
        ),
        max_size=4,
    ),
)
def test_event_payload_is_the_canonical_json(
    ts: float, actor: str, resource: str, details: dict[str, Any]
) -> None:
    args = (ts, actor, "permission.allowed", resource, "success", details)
    assert _event_payload(*args) == _reference_payload(*args)
    assert details_json(details) == json.dumps(details, sort_keys=True)


def test_chained_hash_is_sha256_of_the_canonical_json() -> None:
    event = AuditEvent(
        1_700_000_000.25, "ag\u00e9nt", EventType.KEY_CREATED, "keys/x", Outcome.SUCCESS, {"b": 1}
    )
    (record,) = chain([event], 0, GENESIS)
    payload = _reference_payload(
        event.time, "ag\u00e9nt", "key.created", "keys/x", "success", {"b": 1}
    )
    expected = hashlib.sha256(f"{GENESIS}\n{payload}".encode()).hexdigest()
    assert record.hash == expected == record_hash(GENESIS, record)


def _key(key_id: str, role: str, expires: float, **extra: Any) -> ApiKeyRecord:
    return ApiKeyRecord(key_id, "bot", role, "h" * 64, 0.0, expires, **extra)


def test_key_roles_cache_follows_expiry_grace_and_revocation() -> None:
    clock = FakeClock(1000.0)
    store = MemorySecurityStore()
    index = KeyIndex(store, clock)
    index.changed(_key("a" * 12, "admin", expires=1100.0))
    index.changed(_key("b" * 12, "guest", expires=2000.0, grace_until=1050.0))
    assert index.roles("bot", 1000.0) == ("admin", "guest")
    assert index.roles("bot", 1049.9) == ("admin", "guest")
    assert index.roles("bot", 1050.0) == ("admin",)  # grace over
    assert index.roles("bot", 1100.0) == ()  # expired
    assert index.roles("bot", 1000.0) == ("admin", "guest")  # an earlier time is recomputed
    index.changed(_key("c" * 12, "operator", expires=3000.0, revoked=1500.0))
    assert index.roles("bot", 1200.0) == ("operator",)
    assert index.roles("bot", 1500.0) == ()  # revoked from then on
    assert index.roles("nobody", 1000.0) == ()


def test_policy_rules_for_keeps_order_and_drops_repeated_roles() -> None:
    policy = Policy((), ())
    assert policy.rules_for("x", ("a", "a")) == []
    assert policy.role_names("x", ("b", "a", "b")) == ["b", "a"]


def test_compiled_rule_tests_agree_with_matches() -> None:
    patterns = ("*", "agents", "agents/*", "agents/scan*", "workflows/wf-1*", "a.b", "x/*/y")
    resources = (
        "agents",
        "agents/scanner",
        "agents/scanner/health",
        "agentsX",
        "workflows/wf-12-nightly",
        "workflows/wf-2",
        "a.b",
        "aXb",
        "x/q/y",
        "x/q/r/y",
        "",
    )
    for pattern in patterns:
        rule = CompiledRule(frozenset({"read"}), (pattern,), "test")
        for resource in resources:
            expected = pattern if matches(pattern, resource) else None
            assert rule.allows("read", resource) == expected, (pattern, resource)
            assert rule.allows("write", resource) is None


def test_sync_reloads_only_the_kind_that_changed() -> None:
    """A block written by another process reloads blocks, not the RBAC policy; a grant or
    a new revision recompiles the policy; nothing changed costs one read and no reload."""
    clock = FakeClock(1000.0)
    store = MemorySecurityStore()
    loads: list[int] = []

    def roles() -> ResourceSet:
        loads.append(1)
        return ResourceSet()

    sm = SecurityManager(store, clock, roles)
    sm.check_permission("a", "agents", "read")
    assert len(loads) == 1
    sm.check_permission("a", "agents", "read")
    assert len(loads) == 1  # nothing changed: no reload
    store.put_block(BlockRecord("source:9.9.9.9", 2000.0, 1, "x", None))  # "another process"
    assert not sm.validate_api_key("junk", source="9.9.9.9").valid
    assert sm.validate_api_key("junk", source="9.9.9.9").detail == "too many failures"
    sm.check_permission("a", "agents", "read")
    assert len(loads) == 1  # a block does not recompile the policy
    store.add_grant(Grant("a", "agents", "read", "x", 1.0))
    assert sm.check_permission("a", "agents", "read")
    assert len(loads) == 2
    store.revisions = [5]
    sm.check_permission("a", "agents", "read")
    assert len(loads) == 3
