"""The state store on a real PostgreSQL server: the same contract, and concurrent applies.

The server is ``DEVSKYY_TEST_POSTGRES_URL`` when set; otherwise a throw-away cluster is
started with the machine's ``initdb``/``pg_ctl`` on 127.0.0.1 (as ``postgres`` when the
tests run as root), the recipe of ``tests/test_commerce_postgres.py``. Without a server
or the psycopg driver the tests are skipped.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from planner_strategies import agent, rs
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from state_store_contract import StoreContract, meta

from devskyy.adapters.db import open_engine
from devskyy.adapters.state_store import SqlStateStore, StateStore
from devskyy.core.plan import plan
from devskyy.errors import StateError

pytestmark = pytest.mark.slow
pytest.importorskip("psycopg")


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str]) -> None:
    subprocess.run(_as_server_user(cmd), check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    given = os.environ.get("DEVSKYY_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the server")
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser to start PostgreSQL as postgres")
    base = Path(tempfile.mkdtemp(prefix="devskyy-state-pg-"))
    data, sockets = base / "data", base / "run"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    _run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets}"
    _run([pg_ctl, "-D", str(data), "-o", options, "-w", "-l", str(base / "log"), "start"])
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        stop = [pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]
        subprocess.run(_as_server_user(stop), capture_output=True, timeout=60, check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def engine(server_url: str) -> Iterator[Engine]:
    name = "s_" + uuid.uuid4().hex[:12]
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    eng = open_engine(url)
    yield eng
    eng.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}"'))
    admin.dispose()


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
