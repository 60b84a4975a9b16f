"""The audit log's hash chain: tampering with a row is found and named."""

from __future__ import annotations

from dataclasses import replace

from security_helpers import shipped_roles
from sqlalchemy import Engine, text

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.security_memory import MemorySecurityStore
from devskyy.core.audit import GENESIS, chain, verify
from devskyy.core.keys import make_key
from devskyy.model.security import AuditEvent, EventType, Outcome
from devskyy.runtime.security import SecurityManager


def _events(n: int) -> list[AuditEvent]:
    return [
        AuditEvent(
            1000.0 + i, f"actor{i}", EventType.KEY_CREATED, f"keys/k{i}", Outcome.SUCCESS, {"n": i}
        )
        for i in range(n)
    ]


def test_chain_links_every_event() -> None:
    records = chain(_events(3), 0, GENESIS)
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[0].prev_hash == GENESIS
    assert records[1].prev_hash == records[0].hash
    report = verify(records, (3, records[-1].hash))
    assert (report.ok, report.checked, report.head_hash) == (True, 3, records[-1].hash)
    more = chain(_events(2), 3, records[-1].hash)
    assert verify(records + more, (5, more[-1].hash)).ok


def test_pure_verify_names_each_kind_of_tampering() -> None:
    records = chain(_events(5), 0, GENESIS)
    head = (5, records[-1].hash)
    altered = [*records[:2], replace(records[2], actor="mallory"), *records[3:]]
    report = verify(altered, head)
    assert (report.ok, report.first_bad, report.checked) == (False, 3, 2)
    assert (
        report.problem
        == "event 3 (key.created by mallory at 1970-01-01T00:16:42.000000+00:00) was altered"
    )
    deleted = records[:2] + records[3:]
    assert verify(deleted, head).problem == "event 3 was deleted"
    renumbered = records[:2] + [replace(r, seq=r.seq - 1) for r in records[3:]]
    report = verify(renumbered, head)
    assert report.first_bad == 3
    assert report.problem.endswith(
        "does not follow event 2: events were reordered, or one before it was deleted"
    )
    swapped = [*records[:2], replace(records[3], seq=3), replace(records[2], seq=4), records[4]]
    assert verify(swapped, head).first_bad == 3
    assert verify(records[:4], head).problem == "event 5 was deleted (end of the log)"
    extra = chain(_events(1), 5, records[-1].hash)
    assert verify(records + extra, head).problem == (
        "event 6 is not in the recorded head (appended behind its back)"
    )


def _manager(engine: Engine, clock: FakeClock) -> SecurityManager:
    sm = SecurityManager(engine, clock, shipped_roles)
    for i in range(4):
        sm.generate_api_key(f"agent{i}", "service")
        clock.advance(1)
    sm.check_permission("agent0", "keys", "write")
    sm.flush()
    return sm


def test_sql_update_is_named(engine: Engine, clock: FakeClock) -> None:
    sm = _manager(engine, clock)
    assert sm.verify_audit_log().ok
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET outcome = 'failure' WHERE seq = 2"))
    report = sm.verify_audit_log()
    assert (report.ok, report.first_bad) == (False, 2)
    assert report.problem.endswith("was altered")
    assert report.problem.startswith("event 2 (key.created by local at ")


def test_sql_details_edit_is_named(engine: Engine, clock: FakeClock) -> None:
    sm = _manager(engine, clock)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE audit_events SET details = replace(details, 'agent3', 'agent9') "
                "WHERE seq = 4"
            )
        )
    assert sm.verify_audit_log().first_bad == 4


def test_sql_delete_is_named(engine: Engine, clock: FakeClock) -> None:
    sm = _manager(engine, clock)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = 3"))
    report = sm.verify_audit_log()
    assert (report.first_bad, report.problem) == (3, "event 3 was deleted")


def test_sql_delete_of_the_last_event_is_named(engine: Engine, clock: FakeClock) -> None:
    sm = _manager(engine, clock)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = 5"))
    report = sm.verify_audit_log()
    assert (report.first_bad, report.problem) == (5, "event 5 was deleted (end of the log)")


def test_sql_reorder_is_named(engine: Engine, clock: FakeClock) -> None:
    sm = _manager(engine, clock)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET seq = 100 WHERE seq = 2"))
        conn.execute(text("UPDATE audit_events SET seq = 2 WHERE seq = 3"))
        conn.execute(text("UPDATE audit_events SET seq = 3 WHERE seq = 100"))
    report = sm.verify_audit_log()
    assert report.first_bad == 2
    assert "does not follow event 1: events were reordered" in report.problem


def test_memory_store_tampering_is_named(clock: FakeClock) -> None:
    store = MemorySecurityStore()
    sm = SecurityManager(store, clock, shipped_roles)
    for i in range(3):
        sm.generate_api_key(f"a{i}", "guest")
    records, _ = store.audit_all()
    store.tamper([records[0], replace(records[1], resource="keys/other"), records[2]])
    assert sm.verify_audit_log().first_bad == 2


def test_two_writers_share_one_chain(engine: Engine, clock: FakeClock) -> None:
    first = SecurityManager(engine, clock, shipped_roles)
    second = SecurityManager(engine, clock, shipped_roles)
    first.generate_api_key("a", "guest")
    second.generate_api_key("b", "guest")  # its head is stale: it must re-chain
    first.generate_api_key("c", "guest")
    report = first.verify_audit_log()
    assert (report.ok, report.checked) == (True, 3)
    assert [e["details"]["principal"] for e in second.get_audit_log()] == ["a", "b", "c"]


def test_buffered_events_are_written_by_batch_time_and_reads(clock: FakeClock) -> None:
    store = MemorySecurityStore()
    sm = SecurityManager(store, clock, shipped_roles, audit_batch=3, audit_max_delay=1.0)
    sm.check_permission("scanner", "keys/a", "write")
    assert store.audit_count() == 0
    sm.check_permission("scanner", "keys/b", "write")
    sm.check_permission("scanner", "keys/c", "write")
    assert store.audit_count() == 3  # batch full
    sm.check_permission("scanner", "keys/d", "write")
    clock.advance(1.0)
    sm.check_permission("scanner", "keys/e", "write")
    assert store.audit_count() == 5  # the oldest waited max_delay
    sm.validate_api_key("garbage")  # authentication failures are rolled up per source
    assert store.audit_count() == 5
    sm.check_permission("scanner", "keys/f", "write")
    assert len(sm.get_audit_log(limit=1000)) == 7  # reads flush first


def test_successes_are_rolled_up_per_minute(clock: FakeClock) -> None:
    store = MemorySecurityStore()
    sm = SecurityManager(store, clock, shipped_roles)
    for _ in range(10):
        sm.check_permission("scanner", "agents", "read")
        clock.advance(5.0)
    assert store.audit_count() == 0
    clock.advance(10.0)
    sm.check_permission("scanner", "agents", "read")  # the window of 60 s is over
    records, _ = store.audit_all()
    assert [(r.event_type, r.details) for r in records] == [
        (
            "permission.allowed",
            {
                "count": 11,
                "last": "2023-11-14T22:14:20.000000+00:00",
                "permission": "read",
                "rule": "role service rules[0]: agents",
            },
        )
    ]


def test_identical_successes_are_coalesced_with_a_count(clock: FakeClock) -> None:
    store = MemorySecurityStore()
    sm = SecurityManager(store, clock, shipped_roles)
    key = sm.generate_api_key("svc", "service")
    for _ in range(3):
        assert sm.validate_api_key(key.key).valid
        clock.advance(0.25)
    sm.check_permission("svc", "keys", "write")
    sm.check_permission("svc", "keys", "write")
    events = sm.get_audit_log()
    assert [(e["event_type"], e["details"]) for e in events] == [
        ("key.created", events[0]["details"]),
        (
            "key.validated",
            {"key_id": key.key_id, "count": 3, "last": "2023-11-14T22:13:20.500000+00:00"},
        ),
        (
            "permission.denied",
            {"permission": "write", "reason": "no rule allows svc to write keys"},
        ),
        (
            "permission.denied",
            {"permission": "write", "reason": "no rule allows svc to write keys"},
        ),
    ]
    assert sm.verify_audit_log().ok


def test_key_material_never_reaches_the_chain() -> None:
    key = make_key(bytes(8), bytes(24)).key
    event = AuditEvent(
        1.0, f"x{key}", EventType.KEY_FAILED, "keys", Outcome.FAILURE, {"note": [f"k={key}"]}
    )
    (record,) = chain([event], 0, GENESIS)
    assert (record.actor, record.details) == ("x[redacted]", {"note": ["k=[redacted]"]})
    assert verify([record], (1, record.hash)).ok


def test_a_burst_of_denials_does_not_cut_a_roll_up_window_short(clock: FakeClock) -> None:
    store = MemorySecurityStore()
    sm = SecurityManager(store, clock, shipped_roles, audit_batch=2)
    sm.check_permission("scanner", "agents", "read")
    sm.check_permission("scanner", "keys/a", "write")
    sm.check_permission("scanner", "keys/b", "write")  # batch of 2 denials written
    sm.check_permission("scanner", "agents", "read")
    assert [r.event_type for r in store.audit_all()[0]] == ["permission.denied"] * 2
    sm.flush()
    records, _ = store.audit_all()
    assert [(r.event_type, r.details.get("count")) for r in records] == [
        ("permission.denied", None),
        ("permission.denied", None),
        ("permission.allowed", 2),
    ]
