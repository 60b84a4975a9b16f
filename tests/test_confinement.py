"""Issue 11.2: confinement covers defaults, and paths are declared, not guessed.

The attack: ``POST /api/agents/orchestrator/execute`` without ``target_path`` scanned the
server's working directory (with ``security_scan``: it reported secrets found outside the
workspace). Agents here keep the shipped ``allowedRoots: ["."]`` (the server's working
directory), so only the API's confinement stands between the request and the server's
files. Which inputs are paths comes from the agents' input models (``model.paths``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_fixtures import apply_tree, write_tree
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from devskyy.agents.codecheck.analysis_config import FixParams, ScanParams
from devskyy.agents.codecheck.config import SecurityParams, VerifyParams
from devskyy.api import ApiSettings, create_app
from devskyy.api.workspace import (
    OutsideWorkspace,
    PathNotFound,
    confine,
    confine_inputs,
    workflow_path_params,
)
from devskyy.model.manifests import Workflow
from devskyy.model.paths import PathField, PathKind, WorkspaceFolder, path_inputs
from devskyy.runtime.system import open_system

ROOT = Path(__file__).resolve().parents[1]
SECRET_FILE = 'AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\n'

AGENTS = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {name: security}
spec:
  module: devskyy.agents.security:SecurityAgent
  capabilities: [security_scan]
  retry: {maxAttempts: 1}
  config: {allowedRoots: ["."]}
---
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {name: scanner}
spec:
  module: devskyy.agents.scanner:ScannerAgent
  capabilities: [scan]
  retry: {maxAttempts: 1}
  config: {allowedRoots: ["."]}
---
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {name: look}
spec:
  params:
    where: {type: string, default: "."}
  steps:
    - name: secrets
      agent: security
      input: {target_path: "${{ params.where }}", checks: [secrets]}
"""

FOLDER = PathField("target_path", PathKind.FOLDER)
FILES = PathField("target_files", PathKind.FILES, "target_path")


# -- declarations ----------------------------------------------------------------------


def test_the_code_agents_declare_their_path_inputs() -> None:
    assert path_inputs(ScanParams) == {"target_path": FOLDER, "targetPath": FOLDER}
    assert path_inputs(SecurityParams) == {"target_path": FOLDER, "targetPath": FOLDER}
    assert path_inputs(FixParams) == {
        "target_files": FILES,
        "targetFiles": FILES,
        "target_path": FOLDER,
        "targetPath": FOLDER,
    }


def test_names_alone_do_not_make_a_path() -> None:
    class Undeclared(BaseModel):
        target_path: str = "."
        target_files: list[str] = Field(default_factory=list)

    class Declared(BaseModel):
        output: WorkspaceFolder | None = None

    assert path_inputs(Undeclared) == {}
    assert path_inputs(Declared) == {"output": PathField("output", PathKind.FOLDER)}
    assert path_inputs(None) == {}


# -- confine_inputs --------------------------------------------------------------------


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "ws" / "src").mkdir(parents=True)
    (tmp_path / "ws" / "src" / "a.py").write_text("x = 1\n")
    return tmp_path / "ws"


def test_an_omitted_folder_gets_the_workspace_root(ws: Path, tmp_path: Path) -> None:
    declared = path_inputs(FixParams)
    assert confine_inputs({"fix_type": "auto"}, [ws], declared) == {
        "fix_type": "auto",
        "target_path": str(ws.resolve()),
    }
    assert confine_inputs({"target_path": None}, [ws], declared) == {
        "target_path": str(ws.resolve())
    }
    given = confine_inputs({"targetPath": "src", "target_files": ["a.py"]}, [ws], declared)
    assert given == {
        "targetPath": str((ws / "src").resolve()),
        "target_files": [str((ws / "src" / "a.py").resolve())],
    }
    # Not declared by any agent of the request: left alone, whatever its name.
    assert confine_inputs({"target_path": "/etc"}, [ws], {}) == {"target_path": "/etc"}


def test_declared_inputs_outside_the_workspace_are_refused(ws: Path) -> None:
    declared = path_inputs(FixParams)
    with pytest.raises(OutsideWorkspace, match=r"^path '/etc' is outside the workspace roots$"):
        confine_inputs({"target_path": "/etc"}, [ws], declared)
    with pytest.raises(OutsideWorkspace, match=r"^path '\.\./\.\./x\.py' is outside"):
        confine_inputs({"target_files": ["../../x.py"]}, [ws], declared)
    with pytest.raises(OutsideWorkspace, match=r"^parameter 'target_path' must be a path string$"):
        confine_inputs({"target_path": 3}, [ws], declared)


def test_errors_do_not_tell_whether_an_outside_path_exists(ws: Path, tmp_path: Path) -> None:
    (tmp_path / "exists").mkdir()
    (ws / "to-existing").symlink_to(tmp_path / "exists")
    (ws / "to-missing").symlink_to(tmp_path / "missing")

    def reason(path: str) -> str:
        with pytest.raises((OutsideWorkspace, PathNotFound)) as raised:
            confine(path, [ws])
        return str(raised.value)

    assert reason(str(tmp_path / "exists")).replace("exists", "X") == reason(
        str(tmp_path / "missing")
    ).replace("missing", "X")
    assert reason("to-existing") == (
        "path 'to-existing' is outside the workspace roots (through '..' or a symbolic link)"
    )
    assert reason("to-missing") == (
        "path 'to-missing' is outside the workspace roots (through '..' or a symbolic link)"
    )
    # Inside the workspace, saying that a path does not exist reveals nothing outside.
    assert reason("nope") == "path 'nope' does not exist in the workspace"
    for path in ("/etc", "to-existing", "nope", "../.."):
        assert str(ws) not in reason(path)
        assert str(tmp_path) not in reason(path) or path.startswith(str(tmp_path))


def test_workflow_params_that_feed_a_path_input_are_paths() -> None:
    shipped = Workflow.model_validate(
        __import__("yaml").safe_load((ROOT / "manifests/workflows/scan_and_fix.yaml").read_text())
    )
    declared: dict[str, type[BaseModel]] = {
        "security": SecurityParams,
        "scanner": ScanParams,
        "fixer": FixParams,
        "verifier": VerifyParams,
    }
    steps = [(s.input, path_inputs(declared[s.agent or ""])) for s in shipped.spec.steps]
    assert workflow_path_params(steps) == {"target_path": PathField("target_path", PathKind.FOLDER)}
    built = [
        ({"target_path": "${{ params.base }}/src", "scan_type": "${{ params.where }}"}, FOLDER_OF),
        ({"target_files": "${{ params.files }}", "target_path": "${{ params.root }}"}, FILES_OF),
    ]
    assert workflow_path_params(built) == {
        "root": PathField("root", PathKind.FOLDER),
        "files": PathField("files", PathKind.FILES, "root"),
    }


FOLDER_OF = {"target_path": FOLDER}
FILES_OF = {"target_files": FILES, "target_path": FOLDER}


# -- over HTTP ---------------------------------------------------------------------------


class Server:
    """A server started in ``home`` (its working directory) with ``home/workspace``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.workspace = home / "workspace"
        (self.workspace / "app").mkdir(parents=True)
        (self.workspace / "app" / "main.py").write_text("print('hello')\n")
        (home / "settings.py").write_text(SECRET_FILE)
        tree = write_tree(home / "tree", self.workspace, code=False)
        (tree / "agents" / "code.yaml").write_text(AGENTS)
        self.url = f"sqlite:///{home / 'state.db'}"
        apply_tree(self.url, tree)
        self.system = asyncio.run(open_system(self.url))
        settings = ApiSettings(workspace_roots=(self.workspace,), rate_limit=10_000)
        self.client = TestClient(create_app(self.system, settings), raise_server_exceptions=False)
        self.client.__enter__()
        key = self.system.security_manager().generate_api_key("u-admin", "admin").key
        self.headers = {"X-API-Key": key}

    def post(self, url: str, body: dict[str, Any]) -> Any:
        return self.client.post(url, json=body, headers=self.headers)

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.system.security_manager().close()
        asyncio.run(self.system.close())


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    home = tmp_path / "srv"
    home.mkdir()
    monkeypatch.chdir(home)
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    started = Server(home)
    yield started
    started.close()


def _outputs(view: Any) -> list[dict[str, Any]]:
    """Every agent output (a dict with ``target_path``) anywhere in a run view."""
    found: list[dict[str, Any]] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if "target_path" in value and "issues" in value:
                found.append(value)
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(view)
    return found


@pytest.mark.parametrize("capability", ["security_scan", "scan"])
def test_execute_without_target_path_works_in_the_workspace(
    server: Server, capability: str
) -> None:
    r = server.post(
        "/api/agents/orchestrator/execute?wait=true",
        {"task_type": "audit", "required_capabilities": [capability]},
    )
    assert r.status_code == 200, r.text
    outputs = _outputs(r.json())
    assert outputs
    for output in outputs:
        assert output["target_path"] == "."  # the first workspace root, as answers show it
        assert output["files_scanned"] >= 1
        assert not any("settings.py" in issue["file"] for issue in output["issues"])
    assert str(server.home) + os.sep + "settings.py" not in r.text


def test_execute_with_an_outside_path_is_refused_the_same_whether_it_exists(
    server: Server, tmp_path: Path
) -> None:
    answers = []
    for where in (str(server.home), str(tmp_path / "no-such-folder")):
        r = server.post(
            "/api/agents/orchestrator/execute",
            {
                "task_type": "audit",
                "parameters": {"target_path": where},
                "required_capabilities": ["security_scan"],
            },
        )
        assert r.status_code == 403
        assert r.json()["error"] == "outside_workspace"
        answers.append(r.json()["detail"]["reason"].replace(where, "WHERE"))
        assert str(server.workspace) not in r.text
    # An error shows server paths as every answer does: one outside the workspace is
    # not echoed (the client knows what it sent), whether it exists or not.
    assert answers == ["path '<server path>' is outside the workspace roots"] * 2


def test_a_workflow_path_param_is_confined_and_defaults_into_the_workspace(
    server: Server,
) -> None:
    url = "/api/agents/registry/workflow?wait=true"
    refused = server.post(url, {"workflow_name": "look", "parameters": {"where": "../"}})
    assert refused.status_code == 403
    assert refused.json()["detail"]["reason"] == (
        "path '../' is outside the workspace roots (through '..' or a symbolic link)"
    )
    default = server.post(url, {"workflow_name": "look"})
    assert default.status_code == 200, default.text
    outputs = _outputs(default.json())
    assert outputs
    for output in outputs:
        assert output["target_path"] == "."  # the first workspace root, as answers show it
        assert output["issues"] == []
