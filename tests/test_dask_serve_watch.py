"""``devskyy serve --runner dask`` and ``devskyy watch --runner dask`` as real processes.

End to end, no mocks of Dask or uvicorn: ``serve`` starts its own LocalCluster of worker
processes, a workflow is started over HTTP with an API key from ``devskyy keys create``,
and its attempts must have run in those workers (children of the server, named by the
attempt events, counted by ``/metrics``), which end with the server; stopped in the middle
of an attempt, the server ends its workers too and ``runs resume --runner dask`` finishes
the run without running its succeeded step again. ``watch`` connects to a LocalCluster this
test starts (``--scheduler``) and fires a schedule whose due time passed while no daemon
ran (armed before it by a leader on the fake clock that then stopped, the state a
restarted daemon finds): the scheduled run's steps run on those workers. The agents are
``dask_test_agents:WhereAgent`` (each attempt reports its pid).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_fixtures import answers, create_key, free_port, stop_process, wait_until
from dask_support import TESTS, agent, import_distributed, local_cluster, marks

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.daemon_lock import DaemonLease
from devskyy.adapters.db import open_engine
from devskyy.adapters.run_store import SqlRunStore
from devskyy.adapters.schedule_store import Fire, SqlScheduleStore
from devskyy.adapters.state_store import SqlStateStore
from devskyy.errors import NotFound
from devskyy.model.runs import StepStatus
from devskyy.runtime.reconciler import apply_tree
from devskyy.runtime.scheduler import Scheduler
from devskyy.runtime.system import open_system

distributed = import_distributed()
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ROOT = TESTS.parent
HOST = socket.gethostname()  # the workers run on this machine
WORKER = re.compile(rf"^tcp://127\.0\.0\.1:\d+ \({re.escape(HOST)} pid (\d+)\)$")


@pytest.fixture(autouse=True)
def _agents_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "dask_test_agents")
    monkeypatch.syspath_prepend(str(TESTS))


def _env() -> dict[str, str]:
    """The devskyy processes' environment: tests/ importable (by them and their workers)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "DEVSKYY_ALLOWED_MODULES": "dask_test_agents",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DEVSKYY_RUNNER", None)
    env.pop("DEVSKYY_SCHEDULER", None)
    return env


def _tree(tmp_path: Path, text: str) -> Path:
    """The manifests: ``text`` and the shipped admin role (for the API key)."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "all.yaml").write_text(text, encoding="utf-8")
    shutil.copy(ROOT / "manifests" / "roles" / "admin.yaml", tree / "admin.yaml")
    return tree


def _parent(pid: int) -> int:
    """The parent pid of a live process (Linux ``/proc``)."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    return int(stat.rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _attempts(cli: list[str], env: dict[str, str], cwd: Path, run_id: str) -> list[dict[str, Any]]:
    """``devskyy runs show ID -o json``: its ``attempts`` (step, attempt, status, worker)."""
    shown = json.loads(_cli(cli, env, cwd, "runs", "show", run_id, "-o", "json"))
    assert shown["status"] == "succeeded", shown
    return list(shown["attempts"])


def _devskyy(tmp_path: Path, args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "devskyy.cli", "--state", _url(tmp_path), *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def _fan(steps: int) -> str:
    body = "".join(f"    - {{name: s{i}, agent: where, input: {{i: {i}}}}}\n" for i in range(steps))
    return (
        "apiVersion: devskyy.dev/v1\nkind: Workflow\nmetadata: {name: fan}\n"
        f"spec:\n  priority: high\n  steps:\n{body}"
    )


def test_serve_with_its_own_local_cluster_runs_a_workflow_started_over_http_on_its_workers(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "marks"
    folder.mkdir()
    # serve's LocalCluster has one single-threaded worker process per core; each attempt
    # waits until two processes have run one, so two of them take part (one on one core).
    spread = min(2, os.cpu_count() or 1)
    tree = _tree(tmp_path, agent("where", {"marks": str(folder), "barrier": spread}) + _fan(4))
    env = _env()
    cli = [sys.executable, "-m", "devskyy.cli", "--state", _url(tmp_path)]
    key = create_key(cli, env, tmp_path, "ops", "admin")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["serve", "--port", str(port), "--manifests", str(tree), "--runner", "dask"]
    proc = _devskyy(tmp_path, args, env)
    children: set[int] = set()
    try:
        wait_until(lambda: proc.poll() is not None or answers(f"{base}/healthz"), "the server")
        assert proc.poll() is None, proc.communicate(timeout=10)
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, timeout=60.0, headers=auth) as http:
            started = http.post(
                "/api/agents/registry/workflow", json={"workflow_name": "fan", "parameters": {}}
            )
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]
            view = _poll(lambda: http.get(f"/api/runs/{run_id}?wait=5").json())
            assert view["status"] == "succeeded", view
            steps = view["record"]["steps"]
            pids = {name: s["output"]["pid"] for name, s in steps.items()}
            assert sorted(pids) == ["s0", "s1", "s2", "s3"]
            assert {s["attempts"] for s in steps.values()} == {1}
            assert {s["output"]["input"]["i"] for s in steps.values()} == {0, 1, 2, 3}
            # Worker processes the server started (its LocalCluster), never the server.
            assert proc.pid not in pids.values()
            assert len(set(pids.values())) >= spread
            children = set(pids.values())
            assert {_parent(pid) for pid in children} == {proc.pid}
            assert marks(folder) == sorted(pids.items())  # each step reached the agent once
            attempts = _attempts(cli, env, tmp_path, run_id)
            assert sorted((a["step"], a["attempt"], a["status"]) for a in attempts) == [
                (f"s{i}", 1, "succeeded") for i in range(4)
            ]
            for a in attempts:
                found = WORKER.match(a["worker"])
                assert found, a
                assert int(found.group(1)) == pids[a["step"]]
            metrics = http.get("/metrics").text
            line = 'devskyy_runner_attempts_total{outcome="ok",runner="dask"} 4.0'
            assert line in metrics.splitlines(), metrics
            assert 'runner="local"' not in metrics  # nothing ran in the server itself
    finally:
        err = stop_process(proc, signal.SIGTERM, timeout=60)
    assert proc.returncode == 0, err
    assert key not in err
    assert re.search(
        r"dask runner: started a LocalCluster scheduler tcp://127\.0\.0\.1:\d+, "
        r"dashboard http://\S+/status",
        err,
    ), err
    # The workers end with the server that started them.
    wait_until(lambda: not any(_alive(pid) for pid in children), "the workers to end", 10)


def _poll(view: Callable[[], dict[str, Any]], limit: float = 60.0) -> dict[str, Any]:
    """GET the run until it has finished (long-polls of a few seconds each)."""
    deadline = time.monotonic() + limit
    while True:
        current = view()
        if current["status"] not in ("pending", "running"):
            return current
        assert time.monotonic() < deadline, current


HELD = """\
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {name: held}
spec:
  steps:
    - {name: first, agent: where}
    - {name: held, agent: where, needs: [first]}
"""


def test_serve_stopped_mid_attempt_ends_its_workers_and_runs_resume_finishes_on_dask(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "marks"
    folder.mkdir()
    release = tmp_path / "release"
    config = {"marks": str(folder), "release": str(release), "hold_steps": ["held"]}
    tree = _tree(tmp_path, agent("where", config) + HELD)
    env = _env()
    cli = [sys.executable, "-m", "devskyy.cli", "--state", _url(tmp_path)]
    key = create_key(cli, env, tmp_path, "ops", "admin")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["serve", "--port", str(port), "--manifests", str(tree), "--runner", "dask"]
    proc = _devskyy(tmp_path, [*args, "--grace", "1"], env)
    try:
        wait_until(lambda: proc.poll() is not None or answers(f"{base}/healthz"), "the server")
        assert proc.poll() is None, proc.communicate(timeout=10)
        started = httpx.post(
            f"{base}/api/agents/registry/workflow",
            json={"workflow_name": "held", "parameters": {}},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60.0,
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        # The held step is running on a worker (its agent waits for the release file).
        wait_until(lambda: [s for s, _ in marks(folder)] == ["first", "held"], "the held step")
    finally:
        err = stop_process(proc, signal.SIGTERM, timeout=60)
    assert proc.returncode == 0, err
    assert "stopped finished=0 checkpointed=1" in err, err
    before = dict(marks(folder))
    assert proc.pid not in before.values()
    # The server's LocalCluster ended with it, the worker stuck in an attempt too.
    wait_until(lambda: not any(_alive(pid) for pid in before.values()), "the workers to end", 10)
    shown = json.loads(_cli(cli, env, tmp_path, "runs", "show", run_id, "-o", "json"))
    assert shown["status"] == "cancelled"
    assert {n: (s["status"], s["error"]) for n, s in shown["steps"].items()} == {
        "first": ("succeeded", None),
        "held": ("pending", "CancelledError: the run was cancelled during this step"),
    }
    release.write_text("go", encoding="utf-8")
    _cli(cli, env, tmp_path, "runs", "resume", run_id, "--runner", "dask")
    shown = json.loads(_cli(cli, env, tmp_path, "runs", "show", run_id, "-o", "json"))
    assert shown["status"] == "succeeded"
    assert shown["steps"]["held"]["attempts"] == 2
    after = marks(folder)
    assert [s for s, _ in after] == ["first", "held", "held"]  # first is not run again
    resumed = shown["steps"]["held"]["output"]["pid"]
    assert resumed not in before.values()  # a worker of the resuming command's cluster
    assert [(a["step"], a["attempt"], a["status"]) for a in shown["attempts"]] == [
        ("first", 1, "succeeded"),
        ("held", 2, "succeeded"),
    ]
    found = WORKER.match(shown["attempts"][1]["worker"])
    assert found, shown["attempts"]
    assert int(found.group(1)) == resumed


def _cli(cli: list[str], env: dict[str, str], cwd: Path, *args: str) -> str:
    """A devskyy command that must succeed: its standard output."""
    done = subprocess.run(
        [*cli, *args], env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=90
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


CHAIN = """\
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {{name: nightly}}
spec:
  steps:
    - {{name: one, agent: where}}
    - {{name: two, agent: where, needs: [one], input: {{after: "${{{{ steps.one.output.pid }}}}"}}}}
  schedules:
    - {{cron: "{cron}", timezone: UTC}}
"""


@pytest.fixture
def cluster() -> Iterator[Any]:
    """A LocalCluster of 2 worker processes started by the test, tests/ importable."""
    with local_cluster() as running:
        yield running


async def _arm(url: str, at: float) -> list[Fire]:
    """What a leader at ``at`` (the fake clock) records: the schedule armed then, nothing
    fired; it stops with its lease released, as a daemon that went away."""
    clock = FakeClock(start=at)
    system = await open_system(url, clock=clock, start_agents=False)
    try:
        lease = DaemonLease(system.engine, clock)
        lease.try_acquire()
        try:
            store = SqlScheduleStore(system.engine)
            scheduler = Scheduler(
                system.live, system.workflows, store, system.background, fence=lease.fence
            )
            assert [f for f in await scheduler.tick() if f.run_id] == []
        finally:
            lease.release()
        return store.list_fires()
    finally:
        await system.close()


def test_watch_fires_a_schedule_due_while_no_daemon_ran_and_its_steps_run_on_dask_workers(
    tmp_path: Path, cluster: Any
) -> None:
    folder = tmp_path / "marks"
    folder.mkdir()
    # A daily schedule due at the last minute boundary: a due time the daemon finds
    # passed when it starts, and the next one is a day away (the run is the only one).
    due = float(int(time.time()) // 60 * 60)
    cron = time.strftime("%M %H * * *", time.gmtime(due))
    tree = _tree(tmp_path, agent("where", {"marks": str(folder)}) + CHAIN.format(cron=cron))
    url = _url(tmp_path)
    engine = open_engine(url)
    try:
        apply_tree(tree, SqlStateStore(engine))
        armed = asyncio.run(_arm(url, due - 30))
        assert [(f.workflow, f.status, f.due_at, f.run_id) for f in armed] == [
            ("nightly", "armed", due - 30, None)
        ]
        with distributed.Client(cluster) as client:
            workers = {address: int(pid) for address, pid in client.run(os.getpid).items()}
        env = _env()
        address = cluster.scheduler_address
        args = ["watch", str(tree), "--runner", "dask", "--scheduler", address]
        proc = _devskyy(tmp_path, args, env)
        schedules = SqlScheduleStore(engine)
        runs = SqlRunStore(engine)
        try:
            wait_until(
                lambda: proc.poll() is not None or _finished(schedules, runs), "the scheduled run"
            )
            assert proc.poll() is None, proc.communicate(timeout=10)
        finally:
            err = stop_process(proc, signal.SIGTERM, timeout=60)
        assert proc.returncode == 0, err
        fires = sorted(schedules.list_fires(), key=lambda f: f.due_at)
        assert [(f.status, f.due_at) for f in fires] == [("armed", due - 30), ("fired", due)]
        run_id = fires[1].run_id
        assert run_id is not None
        record = runs.get(run_id)
        events = runs.events(run_id)
    finally:
        engine.dispose()
    assert record.workflow == "nightly"
    assert record.status.value == "succeeded", record
    outputs = {s.name: s.output or {} for s in record.steps}
    pids = {name: out["pid"] for name, out in outputs.items()}
    assert set(pids.values()) <= set(workers.values())  # the test's cluster, not the daemon
    assert proc.pid not in pids.values()
    assert outputs["two"]["input"] == {"after": pids["one"]}
    assert marks(folder) == sorted(pids.items())
    ended = [(e.step, e.attempt, e.status, e.worker) for e in events if e.status.terminal]
    assert sorted(ended) == sorted(
        (name, 1, StepStatus.SUCCEEDED, f"{_address(workers, pid)} ({HOST} pid {pid})")
        for name, pid in pids.items()
    )
    assert f"dask runner: connected to scheduler {address}, dashboard http" in err, err
    # The daemon leaves a cluster it did not start as it found it.
    with distributed.Client(cluster) as client:
        assert set(client.run(os.getpid).values()) == set(workers.values())


def _finished(schedules: SqlScheduleStore, runs: SqlRunStore) -> bool:
    fired = [f for f in schedules.list_fires() if f.run_id]
    if not fired:
        return False
    try:
        status = runs.get(str(fired[0].run_id)).status
    except NotFound:
        return False  # recorded, not created yet
    return status.finished


def _address(workers: dict[str, int], pid: int) -> str:
    return next(address for address, known in workers.items() if known == pid)
