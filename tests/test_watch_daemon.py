"""``devskyy watch`` as a real process on a temporary tree (issue 6).

Each test starts the daemon with JSON logs, changes files the way a user's editor or
``git pull`` would, and reads the daemon's log lines and the store to see what happened.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from watch_process import Daemon, message

pytestmark = pytest.mark.slow

AGENT = """\
# yaml-language-server: $schema=../schemas/agent.json
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: {name}
spec:
  module: {module}
  capabilities: [echo]
  priority: {priority}
"""

AGENT_CODE = """\
from typing import Any
from devskyy.runtime.agent import BaseAgent

class EchoAgent(BaseAgent):
    def __init__(self) -> None:
        super().__init__(agent_name="Echo", version="{version}")

    async def initialize(self) -> bool:
        {init}
        self.status = BaseAgent.AgentStatus.HEALTHY
        return True

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        return {{"echo": kwargs, "version": "{version}"}}
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "manifests").mkdir()
    pkg = tmp_path / "watchagents"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "echo.py").write_text(AGENT_CODE.format(version="1.0.0", init="pass"))
    (tmp_path / "manifests" / "echo.yaml").write_text(
        AGENT.format(name="echo", module="watchagents.echo:EchoAgent", priority="medium")
    )
    return tmp_path


@pytest.fixture
def env(tree: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tree), *sys.path]),
        "DEVSKYY_ALLOWED_MODULES": "watchagents",
        "NO_COLOR": "1",
    }


@pytest.fixture
def daemon(tree: Path, env: dict[str, str]) -> Iterator[Daemon]:
    d = Daemon(tree, "manifests", "--debounce", "0.1", env=env)
    d.wait_for(message("applied revision 1"))
    d.wait_for(message("watching"))
    yield d
    d.stop(signal.SIGKILL)


def _cli(tree: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devskyy.cli", *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _live_agents(tree: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    done = _cli(tree, env, "get", "agents", "-o", "json")
    assert done.returncode == 0, done.stderr
    agents: list[dict[str, Any]] = json.loads(done.stdout)
    return agents


def test_an_edit_is_applied_as_a_new_revision(
    daemon: Daemon, tree: Path, env: dict[str, str]
) -> None:
    (tree / "manifests" / "echo.yaml").write_text(
        AGENT.format(name="echo", module="watchagents.echo:EchoAgent", priority="high")
    )
    record = daemon.wait_for(message("applied revision 2"))
    assert record["updated"] == 1
    assert record["created"] == 0
    assert [a["spec"]["priority"] for a in _live_agents(tree, env)] == ["high"]


def test_an_invalid_edit_is_rejected_and_the_last_good_state_stays(
    daemon: Daemon, tree: Path, env: dict[str, str]
) -> None:
    bad = AGENT.format(name="echo", module="watchagents.echo:EchoAgent", priority="urgent")
    (tree / "manifests" / "echo.yaml").write_text(bad)
    daemon.wait_for(message("change rejected"))
    problem = daemon.wait_for(message("manifests/echo.yaml:"))
    assert problem["message"] == (
        "manifests/echo.yaml:9:3: spec.priority: 'urgent' is not one of critical, high, medium, low"
    )
    assert [a["spec"]["priority"] for a in _live_agents(tree, env)] == ["medium"]
    # The next good change applies normally.
    (tree / "manifests" / "echo.yaml").write_text(
        AGENT.format(name="echo", module="watchagents.echo:EchoAgent", priority="low")
    )
    daemon.wait_for(message("applied revision 2"))
    assert [a["spec"]["priority"] for a in _live_agents(tree, env)] == ["low"]


def test_agent_code_edits_are_hot_reloaded_and_a_broken_edit_keeps_the_old_one(
    daemon: Daemon, tree: Path
) -> None:
    source = tree / "watchagents" / "echo.py"
    source.write_text(AGENT_CODE.format(version="2.0.0", init="pass"))
    reloaded = daemon.wait_for(message("agent reloaded"))
    assert reloaded["agent"] == "echo"
    source.write_text(AGENT_CODE.format(version="3.0.0", init="raise RuntimeError('no db')"))
    failed = daemon.wait_for(message("agent reload failed"))
    assert failed["agent"] == "echo"
    assert "RuntimeError: no db" in failed["error"]


def test_deleting_a_manifest_removes_the_resource_only_with_prune(
    tree: Path, env: dict[str, str]
) -> None:
    (tree / "manifests" / "other.yaml").write_text(
        AGENT.format(name="other", module="watchagents.echo:EchoAgent", priority="low")
    )
    d = Daemon(tree, "manifests", "--debounce", "0.1", env=env)
    try:
        d.wait_for(message("watching"))
        (tree / "manifests" / "other.yaml").unlink()
        record = d.wait_for(message("in sync: no changes"))
        assert record["reason"] == "change"
        assert [a["metadata"]["name"] for a in _live_agents(tree, env)] == ["echo", "other"]
    finally:
        assert d.stop() == 0
    d = Daemon(tree, "manifests", "--prune", "--debounce", "0.1", env=env)
    try:
        record = d.wait_for(message("applied revision 2"))
        assert record["deleted"] == 1
        assert [a["metadata"]["name"] for a in _live_agents(tree, env)] == ["echo"]
    finally:
        assert d.stop() == 0


def test_sigterm_exits_zero_and_releases_the_store(
    daemon: Daemon, tree: Path, env: dict[str, str]
) -> None:
    second = _cli(tree, env, "watch", "manifests")
    assert second.returncode == 3  # EXIT_LEASE_REFUSED: systemd does not restart it
    assert second.stderr.rstrip().endswith("(use --standby to wait for it)")
    assert second.stderr.startswith(
        f"error: another devskyy watch holds this state store: pid {daemon.proc.pid} on "
    )
    assert daemon.stop(signal.SIGTERM) == 0
    daemon.wait_for(message("stopped"))
    history = _cli(tree, env, "history", "-o", "json")
    assert [r["revision"] for r in json.loads(history.stdout)] == [1]
    again = Daemon(tree, "manifests", env=env)
    try:
        again.wait_for(message("in sync: no changes"))
    finally:
        assert again.stop(signal.SIGINT) == 0


def test_sighup_forces_a_resync(daemon: Daemon) -> None:
    daemon.proc.send_signal(signal.SIGHUP)
    record = daemon.wait_for(lambda r: r.get("reason") == "sighup")
    assert record["message"] == "in sync: no changes"


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def test_pull_mode_applies_each_new_commit_and_records_its_hash(
    tree: Path, env: dict[str, str]
) -> None:
    origin = tree / "origin"
    (origin / "manifests").mkdir(parents=True)
    (origin / "manifests" / "echo.yaml").write_text(
        AGENT.format(name="echo", module="watchagents.echo:EchoAgent", priority="medium")
    )
    _git("init", "-q", "-b", "main", cwd=origin)
    _git("config", "user.email", "t@example.com", cwd=origin)
    _git("config", "user.name", "t", cwd=origin)
    _git("add", "-A", cwd=origin)
    _git("commit", "-qm", "one", cwd=origin)
    d = Daemon(
        tree,
        "manifests",
        "--git-url",
        str(origin),
        "--git-branch",
        "main",
        "--interval",
        "0.5",
        env=env,
    )
    try:
        d.wait_for(message("watching"))
        (origin / "manifests" / "echo.yaml").write_text(
            AGENT.format(name="echo", module="watchagents.echo:EchoAgent", priority="critical")
        )
        _git("commit", "-qam", "two", cwd=origin)
        d.wait_for(message("applied revision 2"))
        history = json.loads(_cli(tree, env, "history", "-o", "json").stdout)
        assert history[-1]["git_commit"] == _git("rev-parse", "HEAD", cwd=origin)
        assert [a["spec"]["priority"] for a in _live_agents(tree, env)] == ["critical"]
    finally:
        assert d.stop() == 0


DEEP_WORKFLOW = """\
apiVersion: devskyy.dev/v1
kind: Workflow
metadata:
  name: deep
spec:
  params:
    x:
      type: string
      default: a
  steps:
    - name: one
      agent: echo
      input:
        value: '{expression}'
"""


def test_a_deeply_nested_expression_is_rejected_and_the_daemon_keeps_running(
    daemon: Daemon, tree: Path, env: dict[str, str]
) -> None:
    # Issue 19: 10,000 nested parentheses raised RecursionError in the expression compiler,
    # which killed the daemon, and every restart died on its first pass.
    deep = "${{ " + "(" * 10_000 + "params.x" + ")" * 10_000 + " }}"
    (tree / "manifests" / "deep.yaml").write_text(DEEP_WORKFLOW.format(expression=deep))
    daemon.wait_for(message("change rejected"))
    problem = daemon.wait_for(message("manifests/deep.yaml:"))
    assert problem["message"].startswith(
        "manifests/deep.yaml:14:9: spec.steps[0].input.value: expression '((((("
    )
    assert problem["message"].endswith("is longer than the limit of 4096 characters")
    assert daemon.proc.poll() is None  # still running
    fine = "${{ params.x }}"
    (tree / "manifests" / "deep.yaml").write_text(DEEP_WORKFLOW.format(expression=fine))
    record = daemon.wait_for(message("applied revision 2"))
    assert record["created"] == 1
    assert not [r for r in daemon.seen if "internal error" in str(r.get("message"))]
