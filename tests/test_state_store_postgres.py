"""The state store on a real PostgreSQL server: the same contract, and concurrent applies.

The server is ``DEVSKYY_TEST_POSTGRES_URL`` when set; otherwise a throw-away cluster is
started with the machine's ``initdb``/``pg_ctl`` on 127.0.0.1 (as ``postgres`` when the
tests run as root), the recipe of ``tests/test_commerce_postgres.py``. Without a server
or the psycopg driver the tests are skipped.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from pg_server import fresh_database
from planner_strategies import agent, rs
from sqlalchemy import Engine
from state_store_contract import StoreContract, meta

from devskyy.adapters.db import open_engine
from devskyy.adapters.state_store import SqlStateStore, StateStore
from devskyy.core.plan import plan
from devskyy.errors import StateError

pytestmark = pytest.mark.slow


@pytest.fixture
def engine(server_url: str) -> Iterator[Engine]:
    with fresh_database(server_url) as url:
        eng = open_engine(url)
        yield eng
        eng.dispose()


class TestPostgresStore(StoreContract):
    @pytest.fixture
    def store(self, engine: Engine) -> StateStore:
        assert engine.dialect.name == "postgresql"
        return SqlStateStore(engine)


def test_concurrent_applies_one_wins_and_the_other_leaves_nothing(engine: Engine) -> None:
    """Two appliers plan against revision 1 and apply at once: exactly one revision 2."""
    base = SqlStateStore(engine)
    base.apply(plan(rs(agent("a")), base.live()), meta())
    plans = [
        plan(rs(agent("a"), agent("left")), base.live()),
        plan(rs(agent("a"), agent("right")), base.live()),
    ]
    barrier = threading.Barrier(2, timeout=60)
    outcomes: list[str] = []

    def worker(index: int) -> None:
        store = SqlStateStore(engine)
        barrier.wait()
        try:
            store.apply(plans[index], meta())
            outcomes.append("applied")
        except StateError:
            outcomes.append("refused")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    revisions = base.revisions()
    names = sorted(m.name for m in base.live())
    if sorted(outcomes) == ["applied", "refused"]:
        assert [r.number for r in revisions] == [1, 2]
        assert names in (["a", "left"], ["a", "right"])
    else:
        # the two transactions did not overlap after all: both applied, one after the other
        assert outcomes == ["applied", "applied"]
        assert [r.number for r in revisions] == [1, 2, 3]
        assert names == ["a", "left", "right"]
