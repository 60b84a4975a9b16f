"""The Dask step runner on a real LocalCluster of 2 worker processes (no mocks of Dask).

One cluster serves the module (started by the fixture with Dask's default allowed-failures;
the runner sets 0 on connect). Each test opens the system with ``runner="dask"`` against it,
runs workflows of ``dask_test_agents:WhereAgent`` and checks where attempts ran, what was
recorded, and what happens when a worker is killed with SIGKILL mid-step.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from dask_support import TESTS, agent, apply, import_distributed, local_cluster, marks, workflow

from devskyy.api.metrics import ApiMetrics
from devskyy.cli import main
from devskyy.model.runs import RunRecord, RunStatus, StepStatus
from devskyy.runtime.system import System, open_system

distributed = import_distributed()

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """2 worker processes, one thread each; tests/ importable by the workers."""
    with local_cluster() as running:
        yield running


@pytest.fixture(autouse=True)
def _agents_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "dask_test_agents")
    monkeypatch.syspath_prepend(str(TESTS))


def worker_pids(cluster: Any) -> set[int]:
    with distributed.Client(cluster) as client:
        return set(client.run(os.getpid).values())


async def dask_system(url: str, cluster: Any) -> System:
    system = await open_system(url, runner="dask", scheduler=cluster.scheduler_address)
    assert system.registry.failures == {}
    return system


def outputs(record: RunRecord) -> dict[str, dict[str, Any]]:
    return {s.name: s.output or {} for s in record.steps}


def test_fan_out_runs_on_both_workers_and_each_attempt_names_its_worker(
    tmp_path: Path, state_url: str, cluster: Any
) -> None:
    folder = tmp_path / "marks"
    folder.mkdir()
    config = {"marks": str(folder), "barrier": 2}
    steps = [f"{{name: s{i}, agent: where, input: {{i: {i}}}}}" for i in range(6)]
    apply(tmp_path, state_url, agent("where", config) + workflow("fan", steps, "high"))

    async def go() -> tuple[RunRecord, list[Any], dict[tuple[str, str], int]]:
        system = await dask_system(state_url, cluster)
        try:
            record = await system.workflows.run("fan", {})
            events = system.workflows.store.events(record.id)
            return record, events, system.orchestrator.runner.counts.snapshot()  # type: ignore[attr-defined]
        finally:
            await system.close()

    record, events, counts = asyncio.run(go())
    assert record.status is RunStatus.SUCCEEDED, record
    pids = {out["pid"] for out in outputs(record).values()}
    assert pids == worker_pids(cluster)  # both worker processes, never this one
    assert os.getpid() not in pids
    assert {out["input"]["i"] for out in outputs(record).values()} == set(range(6))
    ended = {e.step: e for e in events if e.status is StepStatus.SUCCEEDED}
    for name, out in outputs(record).items():
        worker = ended[name].worker
        assert worker is not None
        assert worker.startswith("tcp://127.0.0.1:")
        assert worker.endswith(f" pid {out['pid']})")
    assert counts == {("dask", "ok"): 6}

    shown = CliRunner().invoke(main, ["--state", state_url, "runs", "show", record.id])
    assert shown.exit_code == 0, shown.output
    for name, out in outputs(record).items():
        line = rf"^{name} +1 +succeeded +tcp://127\.0\.0\.1:\d+ \(\S+ pid {out['pid']}\)$"
        assert re.search(line, shown.output, re.MULTILINE), shown.output
    as_json = CliRunner().invoke(
        main, ["--state", state_url, "runs", "show", record.id, "-o", "json"]
    )
    assert '"worker": "tcp://127.0.0.1:' in as_json.output


def test_workers_build_once_per_revision_and_rebuild_when_the_agent_changes(
    tmp_path: Path, state_url: str, cluster: Any
) -> None:
    steps = [f"{{name: s{i}, agent: where}}" for i in range(4)]
    apply(tmp_path, state_url, agent("where", {"label": "v1"}) + workflow("w", steps))

    async def run_twice_then_change() -> list[RunRecord]:
        system = await dask_system(state_url, cluster)
        try:
            first = await system.workflows.run("w", {})
            second = await system.workflows.run("w", {})
            apply(tmp_path, state_url, agent("where", {"label": "v2"}) + workflow("w", steps))
            system.live.refresh()
            third = await system.workflows.run("w", {})
            reloaded = await system.registry.reload("where")  # new code, same manifest
            assert reloaded["status"] == "reloaded", reloaded
            fourth = await system.workflows.run("w", {})
            return [first, second, third, fourth]
        finally:
            await system.close()

    records = asyncio.run(run_twice_then_change())
    assert [r.status for r in records] == [RunStatus.SUCCEEDED] * 4
    for record, label in zip(records, ["v1", "v1", "v2", "v2"], strict=True):
        for out in outputs(record).values():
            assert out["label"] == label
            assert out["initialized"] == 1  # built and initialized once per worker
    instances = [{out["instance"] for out in outputs(r).values()} for r in records]
    assert instances[1] <= instances[0]  # the same agents served the second run
    assert not instances[2] & (instances[0] | instances[1])  # new revision: rebuilt
    assert not instances[3] & instances[2]  # code reloaded on the coordinator: rebuilt


def test_placement_local_runs_in_this_process(tmp_path: Path, state_url: str, cluster: Any) -> None:
    text = agent("here", {}, placement="local") + agent("there", {})
    text += workflow("mixed", ["{name: a, agent: here}", "{name: b, agent: there}"])
    apply(tmp_path, state_url, text)

    async def go() -> tuple[RunRecord, list[Any], dict[tuple[str, str], int], str]:
        system = await dask_system(state_url, cluster)
        try:
            record = await system.workflows.run("mixed", {})
            events = system.workflows.store.events(record.id)
            counts = system.orchestrator.runner.counts.snapshot()  # type: ignore[attr-defined]
            return record, events, counts, ApiMetrics(system).render().decode()
        finally:
            await system.close()

    record, events, counts, metrics = asyncio.run(go())
    assert record.status is RunStatus.SUCCEEDED, record
    assert outputs(record)["a"]["pid"] == os.getpid()
    assert outputs(record)["b"]["pid"] in worker_pids(cluster)
    workers = {e.step: e.worker for e in events if e.status is StepStatus.SUCCEEDED}
    assert workers["a"] is None
    assert workers["b"] is not None
    assert counts == {("local", "ok"): 1, ("dask", "ok"): 1}
    assert 'devskyy_runner_attempts_total{outcome="ok",runner="dask"} 1.0' in metrics
    assert 'devskyy_runner_attempts_total{outcome="ok",runner="local"} 1.0' in metrics


def test_a_step_timeout_cancels_the_dask_task(tmp_path: Path, state_url: str, cluster: Any) -> None:
    # No worker has a "gpu": the task waits in the scheduler until the step's timeout.
    text = agent("gpu", {}, resources="{gpu: 1}", retry="{maxAttempts: 1}")
    text += workflow("needs-gpu", ["{name: train, agent: gpu, timeoutSeconds: 1}"])
    apply(tmp_path, state_url, text)

    async def go() -> tuple[RunRecord, int]:
        system = await dask_system(state_url, cluster)
        try:
            record = await system.workflows.run("needs-gpu", {})
            client = system.cluster.client  # type: ignore[union-attr]
            for _ in range(100):  # the cancel reaches the scheduler asynchronously
                left = await client.run_on_scheduler(_devskyy_tasks)
                if not left:
                    break
                await asyncio.sleep(0.05)
            return record, left
        finally:
            await system.close()

    record, left = asyncio.run(go())
    assert record.status is RunStatus.FAILED
    step = record.step("train")
    assert step.error == "StepTimeout: agent 'gpu' did not answer within 1s"
    assert left == 0


def test_a_hung_attempt_past_its_timeout_frees_its_worker(
    tmp_path: Path, state_url: str, cluster: Any
) -> None:
    folder = tmp_path / "marks"
    folder.mkdir()
    hung = {"marks": str(folder), "release": str(tmp_path / "never"), "hold_steps": ["hang"]}
    text = agent("hung", hung, retry="{maxAttempts: 1}")
    text += agent("where", {"marks": str(folder), "barrier": 2})
    text += workflow("hangs", ["{name: hang, agent: hung, timeoutSeconds: 1}"])
    text += workflow("fan", [f"{{name: s{i}, agent: where}}" for i in range(4)])
    apply(tmp_path, state_url, text)

    async def go() -> tuple[RunRecord, RunRecord, float]:
        system = await dask_system(state_url, cluster)
        try:
            hanging = await system.workflows.run("hangs", {})
            start = time.monotonic()
            # Needs both workers at once (barrier 2): the hung one must be free again.
            fan = await system.workflows.run("fan", {})
            return hanging, fan, time.monotonic() - start
        finally:
            await system.close()

    hanging, fan, seconds = asyncio.run(go())
    assert hanging.step("hang").error == "StepTimeout: agent 'hung' did not answer within 1s"
    assert fan.status is RunStatus.SUCCEEDED
    assert {out["pid"] for out in outputs(fan).values()} == worker_pids(cluster)
    assert seconds < 8  # the barrier gives up after 10 s when a worker stays busy


def _devskyy_tasks(dask_scheduler: Any) -> int:
    return sum(1 for key in dask_scheduler.tasks if str(key).startswith("devskyy-"))


def test_kill_9_of_a_worker_mid_step_retries_elsewhere_and_reruns_nothing_else(
    tmp_path: Path, state_url: str, cluster: Any
) -> None:
    folder = tmp_path / "marks"
    folder.mkdir()
    release = tmp_path / "release"
    config = {"marks": str(folder), "release": str(release), "hold_steps": ["victim"]}
    steps = [
        "{name: first, agent: where}",
        "{name: victim, agent: where, needs: [first]}",
        "{name: after, agent: where, needs: [victim]}",
    ]
    retry = "{maxAttempts: 3, initialIntervalSeconds: 0.2}"
    apply(tmp_path, state_url, agent("where", config, retry=retry) + workflow("k", steps))

    async def go() -> tuple[RunRecord, list[Any], int]:
        system = await dask_system(state_url, cluster)
        try:
            run = asyncio.create_task(system.workflows.run("k", {}))
            victim_pid = 0
            for _ in range(1000):
                held = [pid for step, pid in marks(folder) if step == "victim"]
                if held:
                    victim_pid = held[0]
                    break
                await asyncio.sleep(0.02)
            assert victim_pid, "the victim step never started"
            os.kill(victim_pid, signal.SIGKILL)
            release.touch()  # the retry, on another worker, goes through
            record = await run
            return record, system.workflows.store.events(record.id), victim_pid
        finally:
            await system.close()

    record, events, victim_pid = asyncio.run(go())
    assert record.status is RunStatus.SUCCEEDED, record
    assert [(s.name, s.attempts) for s in record.steps] == [
        ("first", 1),
        ("victim", 2),
        ("after", 1),
    ]
    seen = marks(folder)
    assert [pid for step, pid in seen if step == "first"] != []
    assert len([1 for step, _ in seen if step == "first"]) == 1  # never re-run
    assert len([1 for step, _ in seen if step == "after"]) == 1
    victim_runs = [pid for step, pid in seen if step == "victim"]
    assert len(victim_runs) == 2
    assert victim_runs[0] == victim_pid or victim_runs[1] == victim_pid
    assert outputs(record)["victim"]["pid"] != victim_pid
    waits = [e for e in events if e.step == "victim" and e.status is StepStatus.RETRY_WAIT]
    assert len(waits) == 1
    assert waits[0].error is not None
    assert waits[0].error.startswith("TemporaryError: the Dask worker running the attempt died")
    assert waits[0].worker is not None  # the worker that died, by its address
    assert re.fullmatch(r"tcp://127\.0\.0\.1:\d+", waits[0].worker), waits[0].worker


def test_runner_dask_without_the_extra_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, state_url: str, tmp_path: Path
) -> None:
    apply(tmp_path, state_url, agent("where", {}) + workflow("w", ["{name: a, agent: where}"]))
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed
    result = CliRunner().invoke(main, ["--state", state_url, "run", "w", "--runner", "dask"])
    assert result.exit_code == 1
    assert result.output == (
        "error: --runner dask: 'distributed' is not installed: pip install "
        "'devskyy[distributed]' (the Dask step runner, --runner dask)\n"
    )


def test_run_with_a_scheduler_from_the_environment_prints_it_and_its_dashboard(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, state_url: str, cluster: Any
) -> None:
    apply(tmp_path, state_url, agent("where", {}) + workflow("w", ["{name: a, agent: where}"]))
    monkeypatch.setenv("DEVSKYY_SCHEDULER", cluster.scheduler_address)
    result = CliRunner().invoke(main, ["--state", state_url, "run", "w", "-o", "json"])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert re.fullmatch(
        rf"dask scheduler {cluster.scheduler_address}, dashboard http://[0-9.]+:\d+/status",
        first,
    ), first
    assert '"status": "succeeded"' in result.output


def test_runner_dask_without_a_scheduler_starts_a_local_cluster_with_a_dashboard(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, state_url: str
) -> None:
    # The CLI's own LocalCluster: one worker process per core, tests/ importable by them.
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    apply(tmp_path, state_url, agent("where", {}) + workflow("w", ["{name: a, agent: where}"]))
    result = CliRunner().invoke(main, ["--state", state_url, "run", "w", "--runner", "dask"])
    assert result.exit_code == 0, result.output
    assert re.search(
        r"^dask scheduler tcp://127\.0\.0\.1:\d+, dashboard http://", result.output, re.M
    )
    assert re.search(r"^run \w+ succeeded in", result.output, re.M)

    async def dashboard() -> tuple[int, bool]:
        from devskyy.runtime.dask_runner import start_dask  # noqa: PLC0415

        started = await start_dask(None, n_workers=1)
        try:
            assert started.dashboard is not None
            # The dashboard is served by this loop: fetch it from a thread.
            page = await asyncio.to_thread(urllib.request.urlopen, started.dashboard, timeout=30)
            return page.status, b"Dask" in page.read()
        finally:
            await started.close()

    assert asyncio.run(dashboard()) == (200, True)
