"""SIGTERM to ``devskyy watch --serve`` with a workflow in flight: exit 0, nothing lost.

The workflow is started over HTTP (202 + run id) and blocks in its first step; the
daemon gets SIGTERM with a short grace, exits 0, and the run is recorded as cancelled
(resumable). ``devskyy runs resume ID`` then finishes it: every step succeeds once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from api_fixtures import (
    answers,
    create_key,
    free_port,
    make_workspace,
    stop_process,
    subprocess_env,
    wait_until,
    write_tree,
)


@pytest.mark.slow
def test_sigterm_with_a_run_in_flight_exits_0_and_the_run_resumes(tmp_path: Path) -> None:
    gate = tmp_path / "go"
    tree = write_tree(tmp_path, make_workspace(tmp_path), wait_for=str(gate), code=False)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    env = subprocess_env()
    cli = [sys.executable, "-m", "devskyy.cli", "--state", state]
    key = create_key(cli, env, tmp_path, "ops", "admin")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [*cli, "watch", str(tree), "--serve", "--port", str(port), "--grace", "0.5"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    auth = {"X-API-Key": key}
    try:
        wait_until(lambda: proc.poll() is not None or answers(f"{base}/healthz"), "the API")

        def echo_registered() -> bool:
            r = httpx.get(f"{base}/api/agents/registry/list", headers=auth, timeout=5)
            return r.status_code == 200 and "echo" in [a["name"] for a in r.json()["agents"]]

        wait_until(lambda: proc.poll() is not None or echo_registered(), "the echo agent")
        assert proc.poll() is None
        started = httpx.post(
            f"{base}/api/agents/registry/workflow",
            json={"workflow_name": "echo_flow", "parameters": {"word": "kept"}},
            headers=auth,
            timeout=30,
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]

        def running() -> bool:
            view = httpx.get(f"{base}/api/runs/{run_id}", headers=auth, timeout=5).json()
            return bool(view["record"]["steps"]["first"]["status"] == "running")

        wait_until(running, "the first step to start")
    finally:
        err = stop_process(proc)
    assert proc.returncode == 0, err

    shown = subprocess.run(
        [*cli, "runs", "show", run_id, "-o", "json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "cancelled"

    gate.touch()
    resumed = subprocess.run(
        [*cli, "runs", "resume", run_id, "-o", "json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    final = json.loads(
        subprocess.run(
            [*cli, "runs", "show", run_id, "-o", "json"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert final["status"] == "succeeded"
    assert final["params"] == {"word": "kept"}
    steps = final["steps"]
    assert steps["first"]["output"] == {"agent": "echo", "echo": {"word": "kept"}}
    assert steps["second"]["output"] == {"agent": "echo", "echo": {"got": "kept"}}
