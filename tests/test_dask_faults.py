"""Faults of the Dask runner on real clusters: the scheduler going away mid-run (the run
stops interrupted and ``resume`` with a new cluster finishes it), and a worker dying right
after the sandbox gateway charged (``devskyy worker`` processes reaching the same SQLite
file or PostgreSQL database as the coordinator; the retry charges nothing).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from dask_support import TESTS, agent, apply, import_distributed, marks, workflow
from pg_server import store_url

from devskyy.adapters import commerce_payments as money
from devskyy.adapters import commerce_store as store
from devskyy.adapters.db import open_engine
from devskyy.cli import main
from devskyy.model.runs import RunRecord, RunStatus, StepStatus
from devskyy.runtime.system import open_system

distributed = import_distributed()
pytestmark = pytest.mark.timeout(180)
ROOT = TESTS.parent


@pytest.fixture(autouse=True)
def _agents_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "dask_test_agents")
    monkeypatch.syspath_prepend(str(TESTS))


async def local_cluster() -> Any:
    return await distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        asynchronous=True,
        dashboard_address=":0",
        env={"PYTHONPATH": str(TESTS)},
    )


def test_scheduler_gone_interrupts_the_run_and_resume_with_the_cluster_back_finishes_it(
    tmp_path: Path, state_url: str
) -> None:
    folder = tmp_path / "marks"
    folder.mkdir()
    release = tmp_path / "release"
    config = {"marks": str(folder), "release": str(release), "hold_steps": ["held"]}
    steps = ["{name: first, agent: where}", "{name: held, agent: where, needs: [first]}"]
    apply(tmp_path, state_url, agent("where", config) + workflow("s", steps))

    async def until_gone() -> tuple[str, BaseException | None]:
        scheduler, address = _scheduler(tmp_path)
        workers = [_worker(address, {"PYTHONPATH": str(TESTS)}) for _ in range(2)]
        run_id = ""
        try:
            system = await open_system(state_url, runner="dask", scheduler=address)
            try:
                await system.cluster.client.wait_for_workers(2)  # type: ignore[union-attr]
                record = system.workflows.create("s", {})
                run_id = record.id
                run = asyncio.create_task(system.workflows.execute(record.id))
                for _ in range(1000):
                    if any(step == "held" for step, _ in marks(folder)):
                        break
                    await asyncio.sleep(0.02)
                scheduler.kill()  # the scheduler goes away mid-step (SIGKILL)
                try:
                    await asyncio.wait_for(run, 60)
                    error: BaseException | None = None
                except Exception as exc:
                    error = exc
                # Not the agent's fault: its breaker and error count are untouched.
                figures = system.orchestrator.get_agent_metrics("where")
                assert figures["total_errors"] == 0, figures
                assert figures["circuit_breaker"]["state"] == "closed"
                return run_id, error
            finally:
                await system.close()
        finally:
            _stop([scheduler, *workers])

    run_id, error = asyncio.run(until_gone())
    assert type(error).__name__ == "RunnerLost"
    engine = open_engine(state_url)
    try:
        from devskyy.adapters.run_store import SqlRunStore  # noqa: PLC0415

        runs = SqlRunStore(engine)
        stopped = runs.get(run_id)
        events = runs.events(run_id)
    finally:
        engine.dispose()
    assert stopped.status is RunStatus.INTERRUPTED
    assert stopped.error is not None
    assert re.fullmatch(
        r"RunnerLost: the Dask scheduler tcp://[0-9.]+:\d+ is gone \(\w+\); "
        r"resume the run once it is back",
        stopped.error,
    ), stopped.error
    assert stopped.step("first").status is StepStatus.SUCCEEDED
    assert stopped.step("held").status is StepStatus.PENDING
    held = [e for e in events if e.step == "held" and e.status is not StepStatus.RUNNING]
    assert [e.status for e in held] == [StepStatus.RETRY_WAIT]
    assert held[0].error is not None
    assert held[0].error.startswith("RunnerLost: the Dask scheduler")

    release.touch()

    async def resume_on_a_new_cluster() -> RunRecord:
        cluster = await local_cluster()
        try:
            system = await open_system(
                state_url, runner="dask", scheduler=cluster.scheduler_address
            )
            try:
                return await system.workflows.resume(run_id)
            finally:
                await system.close()
        finally:
            await cluster.close()

    final = asyncio.run(resume_on_a_new_cluster())
    assert final.status is RunStatus.SUCCEEDED, final
    assert len([1 for step, _ in marks(folder) if step == "first"]) == 1  # not re-run
    assert len([1 for step, _ in marks(folder) if step == "held"]) == 2


def _commerce_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "shop"
    (tree / "agents").mkdir(parents=True)
    (tree / "workflows").mkdir()
    for name in ("ecommerce", "inventory", "financial"):
        shutil.copy(ROOT / "manifests" / "agents" / f"{name}.yaml", tree / "agents")
    shutil.copy(ROOT / "manifests" / "workflows" / "ecommerce_order.yaml", tree / "workflows")
    return tree


def _scheduler(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A stock ``dask scheduler`` process and its address (from its scheduler file)."""
    info = tmp_path / "scheduler.json"
    argv = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--port", "0"]
    argv += ["--dashboard-address", ":0", "--scheduler-file", str(info)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(1500):
        if info.exists() and info.stat().st_size:
            return proc, str(json.loads(info.read_text())["address"])
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("the dask scheduler did not start")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _worker(address: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``devskyy worker`` without a nanny: a worker that dies stays dead."""
    argv = [sys.executable, "-m", "devskyy.cli", "worker", address, "--no-nanny", "--nthreads", "1"]
    return subprocess.Popen(
        argv,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The store the coordinator and the workers share: SQLite on one machine, PostgreSQL."""
    with store_url(request, tmp_path) as url:
        yield url


def test_a_payment_repeated_after_its_worker_died_charges_once(
    tmp_path: Path, shared_url: str
) -> None:
    state_url = shared_url
    applied = CliRunner().invoke(
        main, ["--state", state_url, "apply", str(_commerce_tree(tmp_path))]
    )
    assert applied.exit_code == 0, applied.output

    async def go() -> tuple[RunRecord, int | None]:
        cluster = await distributed.LocalCluster(
            n_workers=0, processes=True, asynchronous=True, dashboard_address=":0"
        )
        # The only worker at first: it dies (exit 137, as kill -9) once the gateway charged.
        doomed = _worker(cluster.scheduler_address, {"DEVSKYY_FAILPOINTS": "gateway.charged"})
        spare: subprocess.Popen[bytes] | None = None
        try:
            system = await open_system(
                state_url, runner="dask", scheduler=cluster.scheduler_address
            )
            try:
                params = {"payment_method": "pm_card_visa"}
                run = asyncio.create_task(system.workflows.run("ecommerce_order", params))
                for _ in range(3000):
                    if doomed.poll() is not None:
                        break
                    await asyncio.sleep(0.02)
                spare = _worker(cluster.scheduler_address, {})
                record = await asyncio.wait_for(run, 120)
                return record, doomed.returncode
            finally:
                await system.close()
        finally:
            _stop([doomed] if spare is None else [doomed, spare])
            await cluster.close()

    record, died = asyncio.run(go())
    assert died == 137
    assert record.status is RunStatus.SUCCEEDED, record
    payment = record.step("payment")
    assert payment.attempts == 2
    assert payment.output is not None
    assert payment.output["replayed"] is True
    engine = open_engine(state_url)
    try:
        assert store.count(engine, store.sandbox_charges) == 1
        assert store.count(engine, store.payments) == 1
        assert store.count(engine, store.journal_entries) == 1
        assert len(money.ledger_lines(engine)) > 0
    finally:
        engine.dispose()
