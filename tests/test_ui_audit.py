"""The audit page's verify, resumed on each load: only new events are parsed and
re-hashed, and any change to the events already verified (an edit, a deletion, a
truncation) still shows as a broken chain, with the report a whole walk gives."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from api_fixtures import ApiWorld, signed_in
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.security_memory import MemorySecurityStore
from devskyy.adapters.security_store import AuditScan, SecurityStore, SqlSecurityStore
from devskyy.core.audit import ChainReport, missing_revisions, revisions_problem, verify
from devskyy.model.security import AuditEvent, EventType, Outcome
from devskyy.runtime.security.audit import AuditWriter

Scans = list[tuple[int, int]]


def _event(i: int) -> AuditEvent:
    return AuditEvent(
        1000.0 + i, f"actor{i}", EventType.KEY_CREATED, f"keys/k{i}", Outcome.SUCCESS, {"n": i}
    )


def whole_walk(store: SecurityStore) -> ChainReport:
    """What verify reported before it resumed: every event read, parsed and hashed."""
    records, head = store.audit_all()
    report = verify(records, head)
    if not report.ok:
        return report
    revisions = store.revision_numbers() or []
    missing = missing_revisions(records, revisions)
    problem = revisions_problem(missing, len(revisions), len(records))
    return replace(report, ok=False, problem=problem) if problem else report


def spy(store: SecurityStore, monkeypatch: pytest.MonkeyPatch) -> Scans:
    """Each ``audit_scan``: the event it resumed after and how many events it parsed."""
    scans: Scans = []
    original = store.audit_scan

    def scan(after: int) -> AuditScan:
        found = original(after)
        scans.append((after, len(found.records)))
        return found

    monkeypatch.setattr(store, "audit_scan", scan)
    return scans


def sql(engine: Engine, statement: str) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement))


def writer_of(store: SecurityStore, events: int) -> AuditWriter:
    writer = AuditWriter(store, FakeClock())
    for i in range(events):
        writer.record(_event(i))
    return writer


@pytest.mark.parametrize("kind", ["sql", "memory"])
def test_each_verify_parses_only_the_events_since_the_last(
    kind: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    store: SecurityStore = SqlSecurityStore(engine) if kind == "sql" else MemorySecurityStore()
    writer = writer_of(store, 5)
    scans = spy(store, monkeypatch)
    first = writer.verify()
    assert (first.ok, first.checked) == (True, 5)
    assert writer.verify() == first
    writer.record(_event(5))
    writer.record(_event(6))
    grown = writer.verify()
    assert grown == whole_walk(store)
    assert (grown.ok, grown.checked) == (True, 7)
    assert scans == [(0, 5), (5, 0), (5, 2)]


def test_an_edited_event_already_verified_breaks_the_chain(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqlSecurityStore(engine)
    writer = writer_of(store, 5)
    assert writer.verify().ok
    scans = spy(store, monkeypatch)
    # Only the text changes: its hash, the links and the head are as they were.
    sql(engine, """UPDATE audit_events SET details = '{"n": 99}' WHERE seq = 2""")
    report = writer.verify()
    assert report == whole_walk(store)
    assert (report.ok, report.first_bad, report.checked) == (False, 2, 1)
    assert report.problem == (
        "event 2 (key.created by actor1 at 1970-01-01T00:16:41.000000+00:00) was altered"
    )
    assert scans == [(5, 0), (0, 5)]  # the rows walked before changed: walked again
    assert writer.verify() == report  # and it stays broken


def test_a_memory_store_event_edited_after_verify_breaks_the_chain() -> None:
    store = MemorySecurityStore()
    writer = writer_of(store, 4)
    assert writer.verify().ok
    records, _ = store.audit_all()
    store._audit[0] = replace(records[0], resource="keys/other")
    report = writer.verify()
    assert report == whole_walk(store)
    assert (report.ok, report.first_bad) == (False, 1)
    assert report.problem.endswith("was altered")


TAMPERING: dict[str, tuple[str, str, int]] = {
    "the newest events cut off": (
        "DELETE FROM audit_events WHERE seq > 3",
        "event 4 was deleted (end of the log)",
        4,
    ),
    "the oldest events cut off": (
        "DELETE FROM audit_events WHERE seq <= 2",
        "event 1 was deleted",
        1,
    ),
    "an event deleted and the rest renumbered": (
        "DELETE FROM audit_events WHERE seq = 2; "
        "UPDATE audit_events SET seq = seq - 1 WHERE seq > 2; "
        "UPDATE audit_head SET seq = 4",
        "event 2 (key.created by actor2 at 1970-01-01T00:16:42.000000+00:00) does not follow "
        "event 1: events were reordered, or one before it was deleted",
        2,
    ),
    "the log emptied": ("DELETE FROM audit_events", "event 1 was deleted (end of the log)", 1),
    "the head moved back": (
        "UPDATE audit_head SET seq = 4",
        "event 5 is not in the recorded head (appended behind its back)",
        5,
    ),
}


@pytest.mark.parametrize("case", TAMPERING)
def test_a_truncated_or_rewritten_log_is_never_reported_intact(engine: Engine, case: str) -> None:
    statements, problem, first_bad = TAMPERING[case]
    store = SqlSecurityStore(engine)
    writer = writer_of(store, 5)
    assert writer.verify().ok
    for statement in statements.split("; "):
        sql(engine, statement)
    report = writer.verify()
    assert report == whole_walk(store)
    assert (report.ok, report.problem, report.first_bad) == (False, problem, first_bad)


def test_a_forged_but_consistent_rewrite_reads_as_a_whole_walk_would(engine: Engine) -> None:
    """Rewriting event 2 with every later hash and the head is the forgery only
    checkpoints catch (``core.audit``); resuming must not hide it or invent another."""
    store = SqlSecurityStore(engine)
    writer = writer_of(store, 4)
    assert writer.verify().ok
    records, _ = store.audit_all()
    forged = AuditWriter(MemorySecurityStore(), FakeClock())
    forged.record(_event(0))
    forged.record(replace(_event(1), actor="mallory"))
    forged.record(_event(2))
    forged.record(_event(3))
    rewritten, head = forged._store.audit_all()  # the forger's own chain
    assert head is not None
    for record in rewritten:
        sql(
            engine,
            f"UPDATE audit_events SET actor = '{record.actor}', prev_hash = '{record.prev_hash}', "
            f"hash = '{record.hash}' WHERE seq = {record.seq}",
        )
    sql(engine, f"UPDATE audit_head SET hash = '{head[1]}'")
    report = writer.verify()
    assert report == whole_walk(store)
    assert (report.ok, report.checked, report.head_hash) == (True, 4, head[1])
    assert records[-1].hash != head[1]


def test_revisions_are_checked_against_every_event_not_only_the_new_ones(
    engine: Engine,
) -> None:
    store = SqlSecurityStore(engine)
    writer = writer_of(store, 2)
    writer.record(
        replace(_event(2), event_type=EventType.MANIFESTS_APPLIED, details={"revision": 1})
    )
    sql(
        engine,
        "INSERT INTO revisions (number, created_at, source, summary, snapshot) "
        "VALUES (1, '2026-01-01 00:00:00', 'manifests', '{}', '[]')",
    )
    assert writer.verify().ok  # revision 1's event is among the events walked first
    writer.record(_event(3))
    assert writer.verify() == whole_walk(store)
    assert writer.verify().ok
    sql(
        engine,
        "INSERT INTO revisions (number, created_at, source, summary, snapshot) "
        "VALUES (2, '2026-01-01 00:00:00', 'manifests', '{}', '[]')",
    )
    report = writer.verify()
    assert report == whole_walk(store)
    assert (report.ok, report.problem) == (
        False,
        "revision(s) 2 have no manifests.applied event in the audit log",
    )


# -- the page -------------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiWorld]:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    w = ApiWorld(tmp_path, code=False, wait_for=str(tmp_path / "go"))
    w.security.audit_manifests_applied(1)
    yield w
    w.close()


def auditor(world: ApiWorld) -> TestClient:
    return signed_in(world, "admin", "auditor")


def verdict(client: TestClient) -> str:
    page = client.get("/ui/audit")
    assert page.status_code == 200
    found = re.search(r'<p class="verify [a-z]+" role="[a-z]+">(.*?)</p>', page.text)
    assert found, page.text
    return re.sub(r"<[^>]+>", "", found.group(1))


Change = Callable[[Engine], None]


@pytest.mark.parametrize(
    ("change", "shown"),
    [
        (
            lambda e: sql(e, "UPDATE audit_events SET actor = 'someone' WHERE seq = 1"),
            r"✗ chain broken at event 1: event 1 \(manifests\.applied by someone .*\) was altered",
        ),
        (
            lambda e: sql(e, "DELETE FROM audit_events WHERE seq <= 1"),
            r"✗ chain broken at event 1: event 1 was deleted",
        ),
        (
            lambda e: sql(e, "DELETE FROM audit_events WHERE seq > 1"),
            # The page's own events are appended after the cut: a gap, not an end.
            r"✗ chain broken at event 2: event 2 was deleted",
        ),
    ],
    ids=["edited", "oldest cut", "newest cut"],
)
def test_the_page_shows_a_change_made_between_two_loads(
    world: ApiWorld, monkeypatch: pytest.MonkeyPatch, change: Change, shown: str
) -> None:
    client = auditor(world)
    first = verdict(client)
    assert re.fullmatch(r"✓ chain intact \d+ events verified; head [0-9a-f]{16}\.", first), first
    scans = spy(world.security.store, monkeypatch)
    assert verdict(client).startswith("✓ chain intact")
    assert scans[0][0] > 0  # the second load resumed after the events the first walked
    change(world.system.engine)
    assert re.fullmatch(shown, verdict(client)), verdict(client)
    assert verdict(client).startswith("✗ chain broken")  # and stays so
