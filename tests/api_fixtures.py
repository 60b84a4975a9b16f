"""Shared set-up for the API tests: a manifest tree, a running System, keys per role.

``write_tree(root, workspace)`` writes the shipped roles plus a scanner and a fixer
confined to ``workspace`` (the real agents), an ``echo`` agent, an ``echo_flow``
workflow (``fake_workflow_agents:StepAgent``, so ``DEVSKYY_ALLOWED_MODULES`` must
include ``fake_workflow_agents``) and a ``path_flow`` workflow whose ``target_path``
feeds the scanner's (a path the API confines). ``ApiWorld`` opens the system over that tree and
builds the app; ``key(role)`` mints a fresh key, ``blocked_key()`` one that threat
detection has blocked. ``VERIFIER`` and ``scan_and_fix_code()`` (as ``more_code``) add the
shipped ``scan_and_fix`` and the agents it calls; ``browser(world)`` and
``signed_in(world, role)`` are dashboard clients.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from devskyy.adapters.db import open_engine
from devskyy.adapters.state_store import SqlStateStore
from devskyy.api import ApiSettings, create_app
from devskyy.runtime.reconciler import Reconciler
from devskyy.runtime.security import SecurityManager
from devskyy.runtime.system import System, open_system

ROOT = Path(__file__).resolve().parents[1]
ROLES = ("admin", "operator", "analyst", "service", "guest")

ECHO = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {{name: echo}}
spec:
  module: fake_workflow_agents:StepAgent
  capabilities: [echo]
  timeoutSeconds: 30
  retry: {{maxAttempts: 1}}
  rateLimit: {{requests: 3, windowSeconds: 60}}
  config: {{wait_for: "{wait_for}", poll_seconds: 0.02}}
---
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {{name: echo_flow}}
spec:
  params:
    word: {{type: string, default: hello}}
  steps:
    - name: first
      agent: echo
      input: {{word: "${{{{ params.word }}}}"}}
    - name: second
      agent: echo
      needs: [first]
      input: {{got: "${{{{ steps.first.output.echo.word }}}}"}}
"""

KEYMASTER = """\
apiVersion: devskyy.dev/v1
kind: Role
metadata: {name: keymaster}
spec:
  rules:
    - resources: [keys]
      permissions: [write]
    - resources: [agents, workflows, registry, orchestrator]
      permissions: [read]
"""

CODE_AGENTS = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {{name: scanner}}
spec:
  module: devskyy.agents.scanner:ScannerAgent
  capabilities: [scan]
  priority: high
  retry: {{maxAttempts: 1}}
  config: {{allowedRoots: ["{ws}"]}}
---
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {{name: fixer}}
spec:
  module: devskyy.agents.fixer:FixerAgent
  capabilities: [fix]
  dependencies: [scanner]
  retry: {{maxAttempts: 1}}
  config: {{allowedRoots: ["{ws}"]}}
---
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {{name: path_flow}}
spec:
  params:
    target_path: {{type: string, default: "."}}
  steps:
    - name: look
      agent: scanner
      input: {{target_path: "${{{{ params.target_path }}}}", scan_type: quick}}
"""

VERIFIER = """\
---
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {{name: verifier}}
spec:
  module: devskyy.agents.verifier:VerifierAgent
  capabilities: [verify]
  retry: {{maxAttempts: 1}}
  config: {{allowedRoots: ["{ws}"]}}
"""
"""The verifier confined to the workspace, as ``more_code``."""


def _escaped(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")  # more_code is str.format()ed


def scan_and_fix_code() -> str:
    """``more_code`` for the shipped ``scan_and_fix``: its security agent confined to the
    workspace, and the workflow (with ``VERIFIER`` and the scanner and fixer of
    ``CODE_AGENTS``, every agent it names)."""
    security = _escaped((ROOT / "manifests" / "agents" / "security.yaml").read_text())
    security = security.replace('allowedRoots: ["."]', 'allowedRoots: ["{ws}"]')
    assert "{ws}" in security, security
    workflow = _escaped((ROOT / "manifests" / "workflows" / "scan_and_fix.yaml").read_text())
    return f"---\n{security}---\n{workflow}"


def write_tree(
    root: Path, workspace: Path, *, wait_for: str = "", code: bool = True, more_code: str = ""
) -> Path:
    """A manifest tree under ``root/manifests``; returns its path. ``more_code`` is added to
    ``CODE_AGENTS`` (formatted alike, ``{ws}`` the workspace)."""
    tree = root / "manifests"
    (tree / "roles").mkdir(parents=True, exist_ok=True)
    (tree / "agents").mkdir(exist_ok=True)
    for f in (ROOT / "manifests" / "roles").glob("*.yaml"):
        if "agents-service" in f.name or "security-agent" in f.name:
            continue  # they bind agents this tree does not have
        shutil.copy(f, tree / "roles" / f.name)
    (tree / "agents" / "echo.yaml").write_text(ECHO.format(wait_for=wait_for))
    (tree / "roles" / "keymaster.yaml").write_text(KEYMASTER)
    if code:
        (tree / "agents" / "code.yaml").write_text((CODE_AGENTS + more_code).format(ws=workspace))
    return tree


def make_workspace(root: Path) -> Path:
    ws = root / "workspace"
    (ws / "pkg").mkdir(parents=True, exist_ok=True)
    (ws / "pkg" / "a.py").write_text("import os\nx = 1\n")
    return ws


def apply_tree(url: str, tree: Path) -> None:
    engine = open_engine(url)
    try:
        Reconciler(SqlStateStore(engine)).apply_tree(tree)
    finally:
        engine.dispose()


class ApiWorld:
    """A system, its app and a TestClient over a temp tree."""

    def __init__(self, root: Path, settings: dict[str, Any] | None = None, **tree: Any) -> None:
        self.root = root
        self.workspace = make_workspace(root)
        self.url = f"sqlite:///{root / 'state.db'}"
        apply_tree(self.url, write_tree(root, self.workspace, **tree))
        self.system: System = asyncio.run(open_system(self.url))
        options = {
            "workspace_roots": (self.workspace,),
            "rate_limit": 10_000,
            "block_sources": False,
            **(settings or {}),
        }
        self.settings = ApiSettings(**options)
        self.app = create_app(self.system, self.settings)
        self.client = TestClient(self.app, raise_server_exceptions=False)
        self.client.__enter__()

    @property
    def security(self) -> SecurityManager:
        sm = self.system.security
        assert isinstance(sm, SecurityManager)
        return sm

    def key(self, role: str, principal: str | None = None) -> str:
        return self.security.generate_api_key(principal or f"u-{role}", role).key

    def blocked_key(self) -> str:
        new = self.security.generate_api_key("u-blocked", "guest")
        for _ in range(10):
            self.security.authorize("u-blocked", "keys", "write", presented_key_id=new.key_id)
        return new.key

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.security.close()
        asyncio.run(self.system.close())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(predicate: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    """Poll a condition on another process (synchronisation, not simulated time)."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def subprocess_env() -> dict[str, str]:
    tests = str(Path(__file__).parent)
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")]),
        "DEVSKYY_ALLOWED_MODULES": "fake_workflow_agents",
        "PYTHONUNBUFFERED": "1",
    }


def create_key(cli: list[str], env: dict[str, str], cwd: Path, name: str, role: str) -> str:
    """``devskyy keys create NAME --role ROLE`` run as ``cli``: the key it prints."""
    done = subprocess.run(
        [*cli, "keys", "create", name, "--role", role],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def stop_process(
    proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 60.0
) -> str:
    """Send ``sig`` to ``proc`` and wait for it to end (killed after ``timeout`` s): its stderr."""
    proc.send_signal(sig)
    try:
        _out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
    return str(err)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.TransportError:
        return False


_LOGIN_TOKEN = re.compile(r'name="login_token" value="([A-Za-z0-9_-]+)"')


def post_login(client: httpx.Client | TestClient, data: dict[str, str]) -> httpx.Response:
    """Sign in to the dashboard as a browser does: fetch the form (its token), then post it."""
    form = client.get("/ui/login")
    found = _LOGIN_TOKEN.search(form.text)
    assert found, form.text
    return client.post("/ui/login", data={**data, "login_token": found.group(1)})


def browser(world: ApiWorld, base_url: str = "http://testserver") -> TestClient:
    """A dashboard client of ``world`` that does not follow redirects (a browser's view)."""
    return TestClient(world.app, base_url=base_url, follow_redirects=False)


def signed_in(world: ApiWorld, role: str, principal: str | None = None) -> TestClient:
    """A ``browser`` signed in with a fresh key of ``role``."""
    client = browser(world)
    answer = post_login(client, {"api_key": world.key(role, principal)})
    assert answer.status_code == 303, answer.text
    return client
