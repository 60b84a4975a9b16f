"""End to end: ``devskyy serve`` as a real process on 127.0.0.1, a key from the CLI, HTTP calls."""

from __future__ import annotations

import json
import signal
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
def test_serve_over_http_with_a_cli_key(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path)
    tree = write_tree(tmp_path, workspace)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    env = subprocess_env()
    cli = [sys.executable, "-m", "devskyy.cli", "--state", state]
    key = create_key(cli, env, tmp_path, "ops", "admin")
    assert key.startswith("dsk_")
    assert "\n" not in key
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            *cli,
            "serve",
            "--port",
            str(port),
            "--manifests",
            str(tree),
            "--workspace",
            str(workspace),
            "--log-format",
            "json",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: proc.poll() is not None or answers(f"{base}/healthz"), "the server")
        assert proc.poll() is None, proc.communicate(timeout=10)
        with httpx.Client(base_url=base, timeout=60.0) as http:
            assert http.get("/api/agents/registry/list").status_code == 401
            auth = {"Authorization": f"Bearer {key}"}
            listed = http.get("/api/agents/registry/list", headers=auth)
            assert listed.status_code == 200
            assert [a["name"] for a in listed.json()["agents"]] == ["echo", "fixer", "scanner"]
            run = http.post(
                "/api/agents/registry/workflow",
                json={"workflow_name": "echo_flow", "parameters": {"word": "e2e"}},
                headers=auth,
            )
            assert run.status_code == 202
            done = http.get(f"/api/runs/{run.json()['run_id']}?wait=30", headers=auth).json()
            assert done["status"] == "succeeded"
            assert done["result"]["first"]["echo"] == {"word": "e2e"}
            scan = http.post(
                "/api/agents/scanner/scan",
                json={"scan_type": "quick", "target_path": "pkg"},
                headers={"X-API-Key": key},
            )
            assert scan.status_code == 200
            assert scan.json()["files_scanned"] == 1
            outside = http.post(
                "/api/agents/scanner/scan", json={"target_path": str(tmp_path)}, headers=auth
            )
            assert outside.status_code == 403
            metrics = http.get("/metrics", headers=auth)
            assert 'devskyy_agent_calls_total{agent="scanner"} 1.0' in metrics.text
    finally:
        err = stop_process(proc, signal.SIGTERM, timeout=30)
    assert proc.returncode == 0, err
    assert key not in err
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    access = [x for x in logs if x.get("logger") == "devskyy.api.access"]
    assert {x["route"] for x in access} >= {"/api/agents/registry/list", "/api/runs/{run_id}"}
    assert all(x["request_id"] for x in access)
    assert any(x["principal"] == "ops" for x in access)
