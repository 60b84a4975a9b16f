"""Paths mean the same everywhere (issue 18.5), and serve says what it does (18.6).

* a relative ``target_path`` over HTTP is relative to the first workspace root, which is
  what the CLI means when it runs in that folder (docs/api.md);
* a path inside the workspace that does not exist is 404 ``not_found``, not 403
  ``outside_workspace``;
* ``serve`` warns at start when a workspace folder does not exist, logs its URL only once
  the port is bound, and a port in use is ``error: …`` with exit 1.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_fixtures import ApiWorld, free_port, subprocess_env, wait_until
from click.testing import CliRunner

from devskyy.cli import main


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWorld]:
    mp = pytest.MonkeyPatch()
    mp.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    w = ApiWorld(tmp_path_factory.mktemp("paths"))
    w.admin = {"X-API-Key": w.key("admin")}  # type: ignore[attr-defined]
    yield w
    w.close()
    mp.undo()


def scan(world: ApiWorld, target: str) -> tuple[int, dict[str, object]]:
    r = world.client.post(
        "/api/agents/scanner/scan",
        json={"target_path": target, "scan_type": "quick"},
        headers=world.admin,  # type: ignore[attr-defined]
    )
    return r.status_code, r.json()


@pytest.mark.parametrize("target", ["./pkg", "pkg", "pkg/../pkg"])
def test_a_relative_target_path_is_relative_to_the_first_workspace_root(
    world: ApiWorld, target: str
) -> None:
    status, body = scan(world, target)
    assert status == 200, body


def test_the_guides_dot_slash_path_means_what_it_means_in_the_cli(
    world: ApiWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, body = scan(world, "./pkg")
    assert status == 200, body
    monkeypatch.chdir(world.workspace)  # the CLI resolves from where it runs
    result = CliRunner().invoke(
        main,
        ["--state", world.url, "run", "path_flow", "-p", "target_path=./pkg", "-o", "json"],
    )
    assert result.exit_code == 0, result.output
    look = json.loads(result.stdout)["steps"]["look"]["output"]
    api_result = body.get("result", body)
    assert isinstance(api_result, dict)
    assert look["files_scanned"] == api_result["files_scanned"] == 1


def test_a_missing_path_inside_the_workspace_is_not_found(world: ApiWorld) -> None:
    status, body = scan(world, "./nope")
    assert status == 404
    assert body["error"] == "not_found"
    assert body["detail"] == {"reason": "path './nope' does not exist in the workspace"}
    status, body = scan(world, "/etc")  # outside stays 403, whether or not it exists
    assert (status, body["error"]) == (403, "outside_workspace")
    status, body = scan(world, "/no/such/dir")
    assert (status, body["error"]) == (403, "outside_workspace")


def test_a_missing_file_for_the_fixer_is_not_found(world: ApiWorld) -> None:
    r = world.client.post(
        "/api/agents/fixer/fix",
        json={
            "scan_results": {"target_path": "pkg"},
            "target_files": ["gone.py"],
            "dry_run": True,
        },
        headers=world.admin,  # type: ignore[attr-defined]
    )
    assert r.status_code == 404, r.json()
    assert r.json()["detail"]["reason"] == "path 'gone.py' does not exist in the workspace"


class Serve:
    """``devskyy serve`` in a subprocess; its stderr collected."""

    def __init__(self, cwd: Path, *args: str) -> None:
        state = f"sqlite:///{cwd / 'state.db'}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devskyy.cli", "--state", state, "serve", *args],
            cwd=cwd,
            env={**subprocess_env(), "NO_COLOR": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, *, stop: bool = True) -> tuple[int, str, str]:
        if stop and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, err


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_serve_warns_about_a_missing_workspace_and_logs_its_url_after_bind(
    tmp_path: Path,
) -> None:
    port = free_port()
    server = Serve(tmp_path, "--port", str(port), "--log-format", "json")
    try:
        wait_until(lambda: _listening(port) or server.proc.poll() is not None, "serve to bind")
    finally:
        code, out, err = server.finish()
    assert code == 0, err
    records = [json.loads(line) for line in err.splitlines()]
    messages = [r["message"] for r in records]
    warning = next(r for r in records if r["level"] == "warning")
    assert warning["message"] == (
        f"workspace folder {tmp_path}/workspace does not exist: scanner and fixer requests "
        "will find no files until it does (choose one with --workspace DIR)"
    )
    assert f"serving on http://127.0.0.1:{port}" in messages
    assert messages.index(warning["message"]) < messages.index(
        f"serving on http://127.0.0.1:{port}"
    )
    assert out == ""


@pytest.mark.slow
def test_serve_on_a_port_in_use_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "workspace").mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = Serve(tmp_path, "--port", str(port)).finish(stop=False)
    assert (code, out) == (1, "")
    assert err == f"error: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_the_guides_workflow_body_with_a_dot_slash_path_runs(world: ApiWorld) -> None:
    r = world.client.post(
        "/api/agents/registry/workflow?wait=true",
        json={"workflow_name": "path_flow", "parameters": {"target_path": "./pkg"}},
        headers=world.admin,  # type: ignore[attr-defined]
    )
    assert r.status_code == 200, r.json()
    assert r.json()["status"] == "succeeded", r.json()
    missing = world.client.post(
        "/api/agents/registry/workflow",
        json={"workflow_name": "path_flow", "parameters": {"target_path": "./src"}},
        headers=world.admin,  # type: ignore[attr-defined]
    )
    assert missing.status_code == 404
    assert missing.json()["detail"] == {"reason": "path './src' does not exist in the workspace"}
