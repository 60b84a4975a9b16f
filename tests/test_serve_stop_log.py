"""Ctrl-C of ``devskyy serve`` with a run in flight says at once that it is draining.

Before, the log was silent for up to ``--grace`` seconds after the signal, until
``stopped``: a user who pressed Ctrl-C saw a server that seemed to ignore it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
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


def test_sigint_logs_the_drain_before_it_waits(tmp_path: Path) -> None:
    gate = tmp_path / "go"  # never created: the run stays in flight
    tree = write_tree(tmp_path, make_workspace(tmp_path), wait_for=str(gate), code=False)
    env = subprocess_env()
    cli = [sys.executable, "-m", "devskyy.cli", "--state", f"sqlite:///{tmp_path / 'state.db'}"]
    key = create_key(cli, env, tmp_path, "ops", "admin")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = [*cli, "serve", "--port", str(port), "--manifests", str(tree), "--grace", "0.5"]
    proc = subprocess.Popen(
        [*serve, "--log-format", "json"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: proc.poll() is not None or answers(f"{base}/healthz"), "the server")
        started = httpx.post(
            f"{base}/api/agents/registry/workflow",
            json={"workflow_name": "echo_flow"},
            headers={"X-API-Key": key},
            timeout=30,
        )
        assert started.status_code == 202, started.text
    finally:
        err = stop_process(proc, signal.SIGINT)
    assert proc.returncode == 0, err
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    ends = [(x["message"], x.get("grace")) for x in logs if x["message"].startswith("stop")]
    assert ends == [("stopping: draining in-flight work", 0.5), ("stopped", None)]
    assert [x["checkpointed"] for x in logs if x["message"] == "stopped"] == [1]
