"""The commerce store on a real PostgreSQL server: the same non-overselling guarantees.

The server is ``DEVSKYY_TEST_POSTGRES_URL`` when set (a database the tests may create
databases in); otherwise a throw-away cluster is started with the machine's ``initdb``
and ``pg_ctl`` on 127.0.0.1 (as the ``postgres`` user when the tests run as root, since
PostgreSQL refuses to run as root). Without a server or the psycopg driver the tests
are skipped.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from commerce_fixtures import open_shop
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from devskyy.adapters import commerce_payments as money
from devskyy.adapters import commerce_store as store
from devskyy.adapters.clock import FakeClock
from devskyy.adapters.db import open_engine
from devskyy.agents.commerce.common import seed_store
from devskyy.core.commerce import OutOfStock
from devskyy.model.resources import ResourceSet
from devskyy.model.runs import RunRecord, RunStatus
from devskyy.runtime.manifests import load_desired
from devskyy.runtime.orchestrator import Orchestrator
from devskyy.runtime.registry import Registry

pytestmark = pytest.mark.slow
psycopg = pytest.importorskip("psycopg")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


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
    base = Path(tempfile.mkdtemp(prefix="devskyy-pg-"))
    data, sockets = base / "data", base / "run"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()
    _run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c max_connections=200"
    _run([pg_ctl, "-D", str(data), "-o", options, "-w", "-l", str(base / "log"), "start"])
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def engine(server_url: str) -> Iterator[Engine]:
    name = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    engine = open_engine(url)
    seed_store(engine)
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}"'))
    admin.dispose()


def test_the_tables_are_created_on_postgresql(engine: Engine) -> None:
    assert engine.dialect.name == "postgresql"
    assert store.stock(engine, "DSK-MUG-001") == 1000
    assert seed_store(engine) == {"products": 0, "accounts": 0}


def test_fifty_concurrent_reservations_for_ten_items_on_postgresql(engine: Engine) -> None:
    store.set_stock(engine, "DSK-HOOD-001", 10)
    for n in range(50):
        store.create_order(
            engine,
            {
                "id": f"o{n}",
                "customer": "a@example.com",
                "currency": "USD",
                "subtotal_cents": 5900,
                "tax_cents": 0,
                "total_cents": 5900,
                "cost_cents": 2350,
                "status": "validated",
            },
            [
                {
                    "sku": "DSK-HOOD-001",
                    "name": "h",
                    "quantity": 1,
                    "unit_price_cents": 5900,
                    "unit_cost_cents": 2350,
                }
            ],
            1.0,
        )
    barrier = threading.Barrier(50, timeout=60)

    def attempt(n: int) -> str:
        barrier.wait()
        outcome = store.reserve(
            engine,
            f"o{n}",
            from_status="validated",
            reserved_status="reserved",
            short_status="out_of_stock",
            now=2.0,
        )
        return outcome.result

    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(attempt, range(50)))
    assert results.count("reserved") == 10
    assert results.count("short") == 40
    assert store.stock(engine, "DSK-HOOD-001") == 0
    assert store.count(engine, store.reservations, status="held") == 10


def test_whole_orders_on_postgresql_concurrently(engine: Engine) -> None:
    store.set_stock(engine, "DSK-CAP-001", 10)

    async def main() -> list[object]:
        shop = await open_shop(engine, FakeClock())
        return await asyncio.gather(
            *(shop.order(items=[{"sku": "DSK-CAP-001", "quantity": 1}]) for _ in range(30)),
            return_exceptions=True,
        )

    results = asyncio.run(main())
    booked = [r for r in results if isinstance(r, dict)]
    assert len(booked) == 10
    assert all(isinstance(r, OutOfStock) for r in results if not isinstance(r, dict))
    assert all(r["balanced"] for r in booked)
    assert store.stock(engine, "DSK-CAP-001") == 0
    assert store.count(engine, store.journal_entries) == 10
    assert store.count(engine, store.sandbox_charges) == 10
    lines = money.ledger_lines(engine)
    assert sum(line["amount_cents"] for line in lines) == 0


def test_the_workflow_on_postgresql_sells_exactly_the_stock(engine: Engine) -> None:
    # The whole runtime (registry, orchestrator, engine with its run records) on PostgreSQL.
    store.set_stock(engine, "DSK-HOOD-001", 5)
    desired = load_desired(Path(__file__).resolve().parents[1] / "manifests")
    live = ResourceSet(
        tuple(
            m
            for m in desired
            if (m.kind == "Agent" and m.name in {"ecommerce", "inventory", "financial"})
            or (m.kind == "Workflow" and m.name == "ecommerce_order")
        )
    )

    async def main() -> list[RunRecord]:
        clock = FakeClock()
        registry = Registry(Orchestrator(clock), live, clock=clock, engine=engine)
        await registry.discover_and_register_all_agents()
        try:
            runner = registry.workflow_engine()
            items = [{"sku": "DSK-HOOD-001", "quantity": 1}]
            return await asyncio.gather(
                *(runner.run("ecommerce_order", {"items": items}) for _ in range(20))
            )
        finally:
            await registry.shutdown()

    records = asyncio.run(main())
    assert sum(r.status is RunStatus.SUCCEEDED for r in records) == 5
    assert {r.step("reserve").error_type for r in records if r.status is RunStatus.FAILED} == {
        "OutOfStock"
    }
    assert store.stock(engine, "DSK-HOOD-001") == 0
    assert store.count(engine, store.journal_entries) == 5
