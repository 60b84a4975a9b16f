"""Several servers on one PostgreSQL (issue 15), with real processes only.

A throw-away PostgreSQL (``tests/pg_server.py``), three ``devskyy serve`` processes and
two ``devskyy watch --standby`` daemons on it. Checked as a client would: one rate limit
across the servers (same ``Retry-After`` and ``RateLimit-*`` on each), a key revoked, a
subject blocked, a grant revoked and a Roles revision applied through one server or the
CLI refused by every other within a second, a standby that takes over from a leader killed
with ``kill -9``, and a run whose server is killed with ``kill -9`` mid-run taken over by
another server and finished without re-running its succeeded step.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_fixtures import answers, free_port, make_workspace, subprocess_env, write_tree
from pg_server import fresh_database
from security_helpers import shipped_roles
from watch_process import Daemon, message

from devskyy.adapters.daemon_lock import process_state
from devskyy.adapters.db import open_engine
from devskyy.adapters.run_store import SqlRunStore
from devskyy.model.runs import RunStatus
from devskyy.runtime.security import SecurityManager

pytestmark = pytest.mark.slow

HEALTH = "/api/agents/orchestrator/health"
RATE_LIMIT = 20
STALE_AFTER = 2.0  # the servers heartbeat their runs every 0.5 s

RELAY = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {{name: quick}}
spec:
  module: fake_workflow_agents:StepAgent
  retry: {{maxAttempts: 1}}
  config: {{count_file: "{count}"}}
---
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {{name: slow}}
spec:
  module: fake_workflow_agents:StepAgent
  timeoutSeconds: 120
  retry: {{maxAttempts: 1}}
  config: {{count_file: "{count}", wait_for: "{go}", poll_seconds: 0.05}}
---
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {{name: relay}}
spec:
  steps:
    - name: first
      agent: quick
    - name: second
      agent: slow
      needs: [first]
"""


@dataclass
class Cluster:
    root: Path
    url: str
    tree: Path
    env: dict[str, str]
    servers: list[subprocess.Popen[str]] = field(default_factory=list)
    bases: list[str] = field(default_factory=list)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devskyy.cli", "--state", self.url, *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def key(self, name: str, role: str) -> tuple[str, str]:
        done = self.cli("keys", "create", name, "--role", role)
        assert done.returncode == 0, done.stderr
        key = done.stdout.strip()
        return key, key.split("_")[1]

    def serve(self) -> None:
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devskyy.cli",
                "--state",
                self.url,
                "serve",
                "--port",
                str(port),
                "--manifests",
                str(self.tree),
                "--rate-limit",
                str(RATE_LIMIT),
                "--run-stale-after",
                str(STALE_AFTER),
            ],
            env=self.env,
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        _wait(lambda: proc.poll() is not None or answers(base + "/healthz"), 90)
        assert proc.poll() is None, proc.communicate(timeout=10)
        self.servers.append(proc)
        self.bases.append(base)


def _wait(condition: Any, timeout: float = 30.0) -> None:
    """Poll another process (synchronisation, not simulated time)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    workspace = make_workspace(root)
    tree = write_tree(root, workspace, code=False)
    relay = RELAY.format(count=root / "calls.txt", go=root / "go")
    (tree / "agents" / "relay.yaml").write_text(relay)
    with fresh_database(server_url) as url:
        env = {**subprocess_env(), "NO_COLOR": "1", "DEVSKYY_STATE_URL": url}
        world = Cluster(root, url, tree, env)
        try:
            for _ in range(3):
                world.serve()
            yield world
        finally:
            for proc in world.servers:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in world.servers:
                try:
                    proc.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.communicate()


def test_one_rate_limit_across_three_servers(cluster: Cluster) -> None:
    key, _ = cluster.key("limited", "service")
    headers = {"X-API-Key": key}
    with httpx.Client(timeout=30.0) as http:
        for i in range(RATE_LIMIT):
            r = http.get(cluster.bases[i % 3] + HEALTH, headers=headers)
            assert r.status_code == 200, (i, r.text)
            assert r.headers["RateLimit-Remaining"] == str(RATE_LIMIT - 1 - i)
        refused = [http.get(base + HEALTH, headers=headers) for base in cluster.bases]
    assert [r.status_code for r in refused] == [429, 429, 429]
    shown = [
        {h: r.headers[h] for h in ("Retry-After", "RateLimit-Limit", "RateLimit-Remaining")}
        for r in refused
    ]
    assert shown[0] == shown[1] == shown[2]
    assert shown[0]["RateLimit-Limit"] == str(RATE_LIMIT)
    assert shown[0]["RateLimit-Remaining"] == "0"
    assert 55 <= int(shown[0]["Retry-After"]) <= 60


def _reason(r: httpx.Response) -> str:
    detail = r.json().get("detail")
    return str(detail.get("reason")) if isinstance(detail, dict) else str(detail)


def _refused_everywhere(
    http: httpx.Client, cluster: Cluster, path: str, key: str, status: int, since: float
) -> list[str]:
    """Every server refuses now (first try); within 1 s of the change."""
    answers_ = [http.get(base + path, headers={"X-API-Key": key}) for base in cluster.bases]
    elapsed = time.monotonic() - since
    assert [r.status_code for r in answers_] == [status] * 3, [r.text for r in answers_]
    assert elapsed < 1.0
    return [_reason(r) for r in answers_]


def test_security_changes_reach_every_server_within_a_second(cluster: Cluster) -> None:
    admin, _ = cluster.key("root", "admin")
    victim, victim_id = cluster.key("victim", "service")
    cli_victim, cli_victim_id = cluster.key("cli-victim", "service")
    with httpx.Client(timeout=30.0) as http:
        for key in (victim, cli_victim):
            for base in cluster.bases:
                assert http.get(base + HEALTH, headers={"X-API-Key": key}).status_code == 200
        # A key revoked through one server.
        revoked = http.delete(
            f"{cluster.bases[1]}/api/security/api-key/{victim_id}", headers={"X-API-Key": admin}
        )
        assert revoked.status_code == 200, revoked.text
        reasons = _refused_everywhere(http, cluster, HEALTH, victim, 401, time.monotonic())
        assert reasons == ["revoked"] * 3
        # A key revoked with the CLI (another process, not a server).
        done = cluster.cli("keys", "revoke", cli_victim_id)
        assert done.returncode == 0, done.stderr
        reasons = _refused_everywhere(http, cluster, HEALTH, cli_victim, 401, time.monotonic())
        assert reasons == ["revoked"] * 3

        # A key rotated with the CLI, without grace: the old one stops everywhere at once.
        rotated, rotated_id = cluster.key("rotated", "service")
        assert (
            http.get(cluster.bases[0] + HEALTH, headers={"X-API-Key": rotated}).status_code == 200
        )
        done = cluster.cli("keys", "rotate", rotated_id, "--grace", "0")
        assert done.returncode == 0, done.stderr
        reasons = _refused_everywhere(http, cluster, HEALTH, rotated, 401, time.monotonic())
        assert len(set(reasons)) == 1
        fresh = done.stdout.strip()
        for base in cluster.bases:
            assert http.get(base + HEALTH, headers={"X-API-Key": fresh}).status_code == 200

        # A subject blocked by one server (repeated denials) is blocked on every server.
        intruder, _ = cluster.key("intruder", "guest")
        for _ in range(5):
            denied = http.post(
                cluster.bases[0] + "/api/security/api-key/generate",
                headers={"X-API-Key": intruder},
                json={"agent_name": "x", "role": "admin"},
            )
            assert denied.status_code == 403, denied.text
        reasons = _refused_everywhere(http, cluster, HEALTH, intruder, 403, time.monotonic())
        assert reasons == ["blocked"] * 3

        # A grant given and revoked by another process (a library caller on the store).
        reader, _ = cluster.key("reader", "guest")
        summary = "/api/security/summary"
        assert (
            http.get(cluster.bases[2] + summary, headers={"X-API-Key": reader}).status_code == 403
        )
        engine = open_engine(cluster.url)
        try:
            roles = shipped_roles()
            manager = SecurityManager(engine, roles_source=lambda: roles)
            assert manager.grant_resource_access("security", "reader", "read")
            granted_at = time.monotonic()
            for base in cluster.bases:
                r = http.get(base + summary, headers={"X-API-Key": reader})
                assert r.status_code == 200, r.text
            assert time.monotonic() - granted_at < 1.0
            assert manager.revoke_resource_access("security", "reader", "read")
            _refused_everywhere(http, cluster, summary, reader, 403, time.monotonic())
            manager.close()
        finally:
            engine.dispose()

        # A new revision of the Roles: keymaster loses read on the orchestrator.
        keymaster, _ = cluster.key("km", "keymaster")
        for base in cluster.bases:
            assert http.get(base + HEALTH, headers={"X-API-Key": keymaster}).status_code == 200
        role = cluster.tree / "roles" / "keymaster.yaml"
        role.write_text(role.read_text().replace("registry, orchestrator]", "registry]"))
        done = cluster.cli("apply", str(cluster.tree))
        assert done.returncode == 0, done.stderr
        _refused_everywhere(http, cluster, HEALTH, keymaster, 403, time.monotonic())


def test_a_standby_daemon_takes_over_from_a_killed_leader(cluster: Cluster) -> None:
    args = ("manifests", "--standby", "--lease-ttl", "3", "--debounce", "0.1")
    leader = Daemon(cluster.root, *args, env=cluster.env)
    standby: Daemon | None = None
    try:
        leader.wait_for(message("watching"), timeout=60)
        standby = Daemon(cluster.root, *args, env=cluster.env)
        waiting = standby.wait_for(message("standing by"), timeout=60)
        assert waiting["holder_pid"] == leader.proc.pid
        os.kill(leader.proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        took = standby.wait_for(message("took over the daemon lease"), timeout=20)
        assert time.monotonic() - killed < 3.0
        assert took["previous_pid"] == leader.proc.pid
        standby.wait_for(message("watching"), timeout=30)
        assert standby.stop() == 0
        assert leader.stop() == -signal.SIGKILL
    finally:
        for daemon in (leader, standby):
            if daemon is not None and daemon.proc.poll() is None:
                daemon.stop(signal.SIGKILL)


def test_a_run_outlives_its_server_killed_with_sigkill(cluster: Cluster) -> None:
    admin, _ = cluster.key("runner", "admin")
    calls = cluster.root / "calls.txt"
    victim, victim_base = cluster.servers[0], cluster.bases[0]
    with httpx.Client(timeout=30.0) as http:
        started = http.post(
            victim_base + "/api/agents/registry/workflow",
            headers={"X-API-Key": admin},
            json={"workflow_name": "relay", "parameters": {}},
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        # The first step succeeded (and is recorded); the second is in flight, waiting.
        _wait(lambda: calls.exists() and calls.read_text().splitlines() == ["quick", "slow"])
        engine = open_engine(cluster.url)
        try:
            store = SqlRunStore(engine)
            _wait(lambda: store.get(run_id).step("first").status.value == "succeeded")
            before = store.get(run_id)
            assert before.owner is not None
            assert before.owner.endswith(f":{victim.pid}")
            # kill -9, left unreaped: a zombie answers kill(pid, 0) but owns nothing.
            victim.send_signal(signal.SIGKILL)
            _wait(lambda: process_state(victim.pid) == "Z")
            (cluster.root / "go").write_text("")
            _wait(lambda: store.get(run_id).status is RunStatus.SUCCEEDED, 60)
            after = store.get(run_id)
        finally:
            engine.dispose()
            victim.wait(timeout=30)
        survivors = {f":{p.pid}" for p in cluster.servers[1:]}
        assert after.owner is not None
        assert after.owner[after.owner.rfind(":") :] in survivors
        assert after.generation == before.generation + 1
        # The succeeded step was not run again; the cut-short one ran once more.
        assert calls.read_text().splitlines() == ["quick", "slow", "slow"]
        assert after.step("first").output == before.step("first").output
        view = http.get(f"{cluster.bases[1]}/api/runs/{run_id}", headers={"X-API-Key": admin})
        assert view.status_code == 200, view.text
        assert view.json()["status"] == "succeeded"
