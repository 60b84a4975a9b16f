"""Long work does not block: 202 + run id, progress from the store, restart and resume."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_fixtures import ApiWorld

from devskyy.adapters.task_runs import SqlTaskRuns, TaskRun


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    return tmp_path / "go"


@pytest.fixture
def world(tmp_path: Path, gate: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiWorld]:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    w = ApiWorld(tmp_path, code=False, wait_for=str(gate))
    yield w
    w.close()


def admin(world: ApiWorld) -> dict[str, str]:
    return {"X-API-Key": world.key("admin")}


def test_workflow_answers_202_at_once_and_the_run_finishes(world: ApiWorld, gate: Path) -> None:
    h = admin(world)
    r = world.client.post(
        "/api/agents/registry/workflow",
        json={"workflow_name": "echo_flow", "parameters": {"word": "hi"}},
        headers=h,
    )
    assert r.status_code == 202
    run_id = r.json()["run_id"]
    assert r.json()["status_url"] == f"/api/runs/{run_id}"
    # The step waits for the gate: the server is still free to answer.
    view = world.client.get(f"/api/runs/{run_id}", headers=h).json()
    assert view["status"] in ("pending", "running")
    assert view["progress"] == {"steps_done": 0, "steps_total": 2}
    assert view["result"] is None
    assert world.client.get("/healthz").status_code == 200
    gate.touch()
    done = world.client.get(f"/api/runs/{run_id}", params={"wait": 10}, headers=h).json()
    assert done["status"] == "succeeded"
    assert done["progress"] == {"steps_done": 2, "steps_total": 2}
    assert done["result"]["second"] == {"agent": "echo", "echo": {"got": "hi"}}
    assert done["result"]["status"] == "completed"


def test_wait_true_answers_200_with_the_result(world: ApiWorld, gate: Path) -> None:
    gate.touch()
    r = world.client.post(
        "/api/agents/registry/workflow?wait=true",
        json={"workflow_name": "echo_flow"},
        headers=admin(world),
    )
    assert r.status_code == 200
    assert r.json()["status"] == "succeeded"


def test_execute_task_202_then_result_from_the_store(world: ApiWorld, gate: Path) -> None:
    h = admin(world)
    body = {"task_type": "echo-it", "parameters": {"x": 1}, "required_capabilities": ["echo"]}
    r = world.client.post("/api/agents/orchestrator/execute", json=body, headers=h)
    assert r.status_code == 202
    run_id = r.json()["run_id"]
    assert r.json()["kind"] == "task"
    gate.touch()
    done = world.client.get(f"/api/runs/{run_id}?wait=10", headers=h).json()
    assert done["status"] == "succeeded"
    assert done["kind"] == "task"
    assert done["result"]["results"]["echo"] == {"agent": "echo", "echo": {"x": 1}}
    assert done["result"]["error"] is None
    # A task is a workflow run of the DAG engine: durable, listed with the runs.
    stored = world.system.workflows.store.get(run_id)
    assert (stored.workflow, stored.status.value) == ("task:echo-it", "succeeded")
    assert stored.params["task_type"] == "echo-it"


def test_bad_workflow_requests(world: ApiWorld) -> None:
    h = admin(world)
    missing = world.client.post(
        "/api/agents/registry/workflow", json={"workflow_name": "nope"}, headers=h
    )
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    bad_param = world.client.post(
        "/api/agents/registry/workflow",
        json={"workflow_name": "echo_flow", "parameters": {"word": 3}},
        headers=h,
    )
    assert bad_param.status_code == 400
    assert "word" in bad_param.json()["detail"]
    unknown_run = world.client.get("/api/runs/zzzz", headers=h)
    assert unknown_run.status_code == 404


def test_a_run_survives_a_restart_and_resumes(
    tmp_path: Path, gate: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    first = ApiWorld(tmp_path, code=False, wait_for=str(gate))
    key = first.key("admin")
    r = first.client.post(
        "/api/agents/registry/workflow",
        json={"workflow_name": "echo_flow"},
        headers={"X-API-Key": key},
    )
    run_id = r.json()["run_id"]
    first.close()  # the server stops with the run in flight: it is cancelled, resumable

    second = ApiWorld(tmp_path, code=False, wait_for=str(gate))
    try:
        h = {"X-API-Key": key}
        view = second.client.get(f"/api/runs/{run_id}", headers=h).json()
        assert view["status"] in ("cancelled", "interrupted")
        assert view["resumable"] is True
        gate.touch()
        resumed = second.client.post(f"/api/runs/{run_id}/resume", headers=h)
        assert resumed.status_code == 202
        assert resumed.json()["kind"] == "workflow"
        done = second.client.get(f"/api/runs/{run_id}?wait=10", headers=h).json()
        assert done["status"] == "succeeded"
        again = second.client.post(f"/api/runs/{run_id}/resume", headers=h)
        assert again.status_code == 409
        assert "nothing to resume" in again.json()["detail"]
    finally:
        second.close()


def test_an_orphaned_task_reads_interrupted_and_can_be_started_again(
    world: ApiWorld, gate: Path
) -> None:
    tasks = SqlTaskRuns(world.system.engine)
    dead = f"{socket.gethostname()}:{2**22 + os.getpid() % 1000}"
    request = {"task_type": "t", "parameters": {}, "required_capabilities": ["echo"]}
    tasks.create(TaskRun("orphan1", "t", request, "running", dead, world.system.clock.now()))
    h = admin(world)
    view = world.client.get("/api/runs/orphan1", headers=h).json()
    assert view["status"] == "interrupted"
    assert view["resumable"] is True
    gate.touch()
    assert world.client.post("/api/runs/orphan1/resume", headers=h).status_code == 202
    done = world.client.get("/api/runs/orphan1?wait=10", headers=h).json()
    assert done["status"] == "succeeded"


def test_execute_with_a_capability_nobody_has_is_404_at_once(world: ApiWorld) -> None:
    r = world.client.post(
        "/api/agents/orchestrator/execute",
        json={"task_type": "t", "required_capabilities": ["echo", "teleport"]},
        headers=admin(world),
    )
    assert r.status_code == 404
    assert r.json()["detail"] == "no registered agent has capability 'teleport'"
