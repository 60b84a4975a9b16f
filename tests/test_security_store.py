"""One contract for both security stores (SQL and in-memory)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from pg_server import store_url

from devskyy.adapters.db import open_engine
from devskyy.adapters.security_memory import MemorySecurityStore
from devskyy.adapters.security_store import (
    AuditConflict,
    SecurityStore,
    SqlSecurityStore,
)
from devskyy.core.audit import GENESIS, chain
from devskyy.errors import StateError
from devskyy.model.security import (
    ApiKeyRecord,
    AuditEvent,
    BlockRecord,
    EventType,
    Grant,
    Outcome,
)


@pytest.fixture(params=["sql", "memory", pytest.param("postgres", marks=pytest.mark.slow)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SecurityStore]:
    if request.param == "memory":
        yield MemorySecurityStore()
        return
    with store_url(request, tmp_path) as url:
        engine = open_engine(url)
        yield SqlSecurityStore(engine)
        engine.dispose()


KEY = ApiKeyRecord("abcdefghijkl", "alice", "operator", "f" * 64, 10.0, 100.0)


def test_keys(store: SecurityStore) -> None:
    assert store.get_key(KEY.key_id) is None
    store.add_key(KEY)
    with pytest.raises(StateError, match="key abcdefghijkl exists"):
        store.add_key(KEY)
    assert store.get_key(KEY.key_id) == KEY
    other = replace(KEY, key_id="mnopqrstuvwx", principal="bob", created=5.0)
    store.add_key(other)
    assert store.list_keys() == [other, KEY]
    assert store.list_keys("alice") == [KEY]
    store.put_key(replace(KEY, revoked=50.0, grace_until=60.0, rotated_from="x"))
    store.touch({KEY.key_id: 55.5, "missing00000": 1.0})
    assert store.get_key(KEY.key_id) == replace(
        KEY, revoked=50.0, grace_until=60.0, rotated_from="x", last_used=55.5
    )


def test_grants(store: SecurityStore) -> None:
    grant = Grant("alice", "database", "write", "root", 1.0)
    assert store.add_grant(grant) is True
    assert store.add_grant(replace(grant, granted_by="other")) is False
    assert store.add_grant(replace(grant, permission="read")) is True
    assert store.grants() == [grant, replace(grant, permission="read")]
    assert store.remove_grant("alice", "database", "write") is True
    assert store.remove_grant("alice", "database", "write") is False
    assert store.grants() == [replace(grant, permission="read")]


def _event(i: int, actor: str = "a", kind: EventType = EventType.KEY_CREATED) -> AuditEvent:
    return AuditEvent(100.0 + i, actor, kind, "keys", Outcome.SUCCESS, {"i": i, "nested": [1]})


def test_audit_append_head_and_query(store: SecurityStore) -> None:
    assert store.audit_head() is None
    first = chain([_event(0), _event(1, "b")], 0, GENESIS)
    store.append_audit(first, after=0)
    assert store.audit_head() == (2, first[-1].hash)
    with pytest.raises(AuditConflict, match="audit head moved from 0 to 2"):
        store.append_audit(chain([_event(2)], 0, GENESIS), after=0)
    second = chain([_event(2, kind=EventType.KEY_REVOKED)], 2, first[-1].hash)
    store.append_audit(second, after=2)
    records, head = store.audit_all()
    assert records == first + second
    assert head == (3, second[-1].hash)
    assert store.audit_count() == 3
    assert [r.seq for r in store.audit_query(limit=2)] == [2, 3]
    assert [r.seq for r in store.audit_query(actor="a")] == [1, 3]
    assert [r.seq for r in store.audit_query(event_type="key.revoked")] == [3]
    assert [r.seq for r in store.audit_query(since=101.0)] == [2, 3]
    assert store.audit_query(actor="nobody") == []


def test_audit_scan_parses_only_the_events_after_and_digests_the_rest(
    store: SecurityStore,
) -> None:
    empty = store.audit_scan(0)
    assert (empty.records, empty.head, empty.prefix) == ([], None, empty.digest)
    first = chain([_event(0), _event(1, "b"), _event(2)], 0, GENESIS)
    store.append_audit(first, after=0)
    whole = store.audit_scan(0)
    assert (whole.records, whole.head) == (first, (3, first[-1].hash))
    assert whole.prefix == empty.digest  # no event up to 0
    later = store.audit_scan(2)
    assert (later.records, later.head, later.digest) == (first[2:], whole.head, whole.digest)
    assert store.audit_scan(3) == (whole.digest, whole.digest, [], whole.head)
    assert len({store.audit_scan(n).prefix for n in range(4)}) == 4
    more = chain([_event(3)], 3, first[-1].hash)
    store.append_audit(more, after=3)
    grown = store.audit_scan(3)
    assert (grown.prefix, grown.records) == (whole.digest, more)
    assert grown.digest not in (whole.digest, grown.prefix)


def test_blocks(store: SecurityStore) -> None:
    block = BlockRecord("key:abc", 500.0, 1, "5 failures", "alice")
    assert store.get_block("key:abc") is None
    store.put_block(block)
    store.put_block(replace(block, until=900.0, offences=2))
    assert store.get_block("key:abc") == replace(block, until=900.0, offences=2)
    store.put_block(BlockRecord("source:x", 1.0, 1))
    assert [b.subject for b in store.blocks()] == ["key:abc", "source:x"]
    assert store.delete_block("key:abc") is True
    assert store.delete_block("key:abc") is False


def test_the_change_counters_move_with_every_access_write(store: SecurityStore) -> None:
    """The per-request check of every server: one read, moved by any process's write,
    one counter per kind (so a block does not make a server recompile its policy)."""
    marks = store.marks()
    assert marks.revision is None  # no revision applied in this store

    def moved(action: str, keys: int = 0, grants: int = 0, blocks: int = 0) -> None:
        nonlocal marks
        now = store.marks()
        assert (now.keys - marks.keys, now.grants - marks.grants, now.blocks - marks.blocks) == (
            keys,
            grants,
            blocks,
        ), action
        marks = now

    store.add_key(KEY)
    moved("add_key", keys=1)
    store.touch({KEY.key_id: 50.0})
    moved("touch (last used) is not an access change")
    store.put_key(replace(KEY, revoked=20.0))
    moved("put_key", keys=1)
    grant = Grant("bob", "agents/*", "read", "alice", 1.0)
    assert store.add_grant(grant)
    moved("add_grant", grants=1)
    assert not store.add_grant(grant)
    moved("a grant that exists")
    assert store.remove_grant("bob", "agents/*", "read")
    moved("remove_grant", grants=1)
    assert not store.remove_grant("bob", "agents/*", "read")
    moved("no grant to remove")
    store.put_block(BlockRecord("source:1.2.3.4", 99.0, 1, "x", None))
    moved("put_block", blocks=1)
    assert store.delete_block("source:1.2.3.4")
    moved("delete_block", blocks=1)
    assert not store.delete_block("source:1.2.3.4")
    moved("no block to delete")
    assert store.revision_numbers() in (None, [])
