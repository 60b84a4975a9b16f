"""Standby daemons: real ``devskyy watch --standby`` processes on one store (issues 15.3, 19.6).

Two daemons start on the same store: one leads, the other stands by. The leader is killed
with ``kill -9`` and left unreaped (a zombie still answers ``kill(pid, 0)``, which fooled the
first lease), or paused with SIGSTOP so that only its heartbeat goes stale; the standby takes
over within the lease time, logs and audits it, and applies the next change. A paused leader
that wakes up after losing the lease exits 4 without applying. The same on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_server import fresh_database
from test_watch_daemon import AGENT, AGENT_CODE
from watch_process import Daemon, message

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.daemon_lock import DaemonLease, LeaseLost, alive, holder_of, process_state
from devskyy.adapters.db import open_engine
from devskyy.adapters.state_store import SqlStateStore
from devskyy.runtime.reconciler import Reconciler

pytestmark = pytest.mark.slow

TTL = 3.0  # short, so the stale-heartbeat test stays quick; the default is 10 s


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "manifests").mkdir()
    pkg = tmp_path / "watchagents"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "echo.py").write_text(AGENT_CODE.format(version="1.0.0", init="pass"))
    _write_agent(tmp_path, "medium")
    return tmp_path


def _write_agent(tree: Path, priority: str) -> None:
    (tree / "manifests" / "echo.yaml").write_text(
        AGENT.format(name="echo", module="watchagents.echo:EchoAgent", priority=priority)
    )


def _env(tree: Path, state_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tree), *sys.path]),
        "DEVSKYY_ALLOWED_MODULES": "watchagents",
        "DEVSKYY_STATE_URL": state_url,
        "NO_COLOR": "1",
    }


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


def _standby(tree: Path, env: dict[str, str]) -> Daemon:
    args = ("manifests", "--standby", "--lease-ttl", str(TTL), "--debounce", "0.1")
    return Daemon(tree, *args, env=env)


def _takeovers(tree: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    done = _cli(tree, env, "audit", "--type", "daemon.takeover", "-o", "json")
    assert done.returncode == 0, done.stderr
    events: list[dict[str, Any]] = json.loads(done.stdout)
    return events


def _revisions(tree: Path, env: dict[str, str]) -> list[int]:
    done = _cli(tree, env, "history", "-o", "json")
    assert done.returncode == 0, done.stderr
    return [r["revision"] for r in json.loads(done.stdout)]


def _kill_leader_and_watch_the_standby_take_over(tree: Path, env: dict[str, str]) -> None:
    leader = _standby(tree, env)
    standby: Daemon | None = None
    try:
        leader.wait_for(message("watching"))
        standby = _standby(tree, env)
        waiting = standby.wait_for(message("standing by"))
        assert waiting["holder_pid"] == leader.proc.pid
        # kill -9, and do not reap it yet: a zombie must not hold the lease.
        os.kill(leader.proc.pid, signal.SIGKILL)
        _wait_until(lambda: process_state(leader.proc.pid) == "Z")
        killed = time.monotonic()
        took = standby.wait_for(message("took over the daemon lease"), timeout=TTL + 10)
        elapsed = time.monotonic() - killed
        assert elapsed < TTL  # within the lease time (a dead local holder: at once)
        assert took["previous_pid"] == leader.proc.pid
        assert took["reason"] == "its process is a zombie"
        standby.wait_for(message("watching"))
        # The new leader applies the next change.
        _write_agent(tree, "high")
        applied = standby.wait_for(message("applied revision 2"))
        assert applied["updated"] == 1
        assert _revisions(tree, env) == [1, 2]
        [event] = _takeovers(tree, env)
        assert event["actor"] == "watch"
        assert event["details"]["previous_pid"] == leader.proc.pid
        assert event["details"]["reason"] == "its process is a zombie"
        assert standby.stop() == 0
        assert leader.stop() == -signal.SIGKILL
    finally:
        for daemon in (leader, standby):
            if daemon is not None and daemon.proc.poll() is None:
                daemon.stop(signal.SIGKILL)


def _wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_a_standby_takes_over_from_a_leader_killed_with_sigkill(tree: Path, tmp_path: Path) -> None:
    _kill_leader_and_watch_the_standby_take_over(
        tree, _env(tree, f"sqlite:///{tmp_path / 'state.db'}")
    )


def test_a_standby_takes_over_on_postgresql(tree: Path, server_url: str) -> None:
    with fresh_database(server_url) as url:
        _kill_leader_and_watch_the_standby_take_over(tree, _env(tree, url))


def test_a_paused_leader_loses_the_lease_and_exits_4_without_applying(
    tree: Path, tmp_path: Path
) -> None:
    env = _env(tree, f"sqlite:///{tmp_path / 'state.db'}")
    leader = _standby(tree, env)
    standby: Daemon | None = None
    try:
        leader.wait_for(message("watching"))
        standby = _standby(tree, env)
        standby.wait_for(message("standing by"))
        os.kill(leader.proc.pid, signal.SIGSTOP)  # alive, but its heartbeat stops
        paused = time.monotonic()
        took = standby.wait_for(message("took over the daemon lease"), timeout=TTL + 10)
        assert time.monotonic() - paused <= TTL + 1.5
        assert took["reason"].startswith("no heartbeat for ")
        standby.wait_for(message("watching"))
        _write_agent(tree, "high")  # both daemons see this change
        standby.wait_for(message("applied revision 2"))
        os.kill(leader.proc.pid, signal.SIGCONT)
        assert leader.proc.wait(timeout=30) == 4  # EXIT_LEASE_LOST: it stops, never applies
        assert leader.stop() == 4  # already ended: only collects its log
        lost = leader.wait_for(message("stopping: the daemon lease was taken over"))
        assert lost["level"] == "critical"
        assert lost["exit_code"] == 4
        applied = [r for r in leader.seen if str(r.get("message", "")).startswith("applied")]
        assert [r["message"] for r in applied] == ["applied revision 1: create Agent/echo"]
        assert _revisions(tree, env) == [1, 2]
        assert standby.stop() == 0
    finally:
        for daemon in (leader, standby):
            if daemon is not None and daemon.proc.poll() is None:
                os.kill(daemon.proc.pid, signal.SIGCONT)
                daemon.stop(signal.SIGKILL)


def test_sighup_spares_a_waiting_standby_and_sigterm_ends_it_with_0(
    tree: Path, tmp_path: Path
) -> None:
    env = _env(tree, f"sqlite:///{tmp_path / 'state.db'}")
    leader = _standby(tree, env)
    try:
        leader.wait_for(message("watching"))
        standby = _standby(tree, env)
        standby.wait_for(message("standing by"))
        standby.proc.send_signal(signal.SIGHUP)  # systemctl reload: must not kill it
        standby.wait_for(message("standing by: nothing to resync yet"))
        assert standby.proc.poll() is None
        assert standby.stop(signal.SIGTERM) == 0
        assert standby.wait_for(message("stopped while standing by"))
        assert leader.proc.poll() is None  # the leader never noticed
    finally:
        leader.stop(signal.SIGKILL)


# -- the lease itself --------------------------------------------------------------------


@pytest.fixture
def zombie() -> Iterator[int]:
    """A child killed with SIGKILL and not reaped: a zombie, which kill(pid, 0) finds."""
    child = subprocess.Popen(["sleep", "60"])
    os.kill(child.pid, signal.SIGKILL)
    _wait_until(lambda: process_state(child.pid) == "Z")
    yield child.pid
    child.wait()


def test_a_zombie_is_not_alive(zombie: int) -> None:
    os.kill(zombie, 0)  # what the first lease asked: it answers as if alive
    assert process_state(zombie) == "Z"
    assert alive(zombie) is False
    assert alive(os.getpid()) is True
    assert alive(2**22 + 12345) is False  # no such process


def test_a_zombie_holder_loses_its_lease_at_once(zombie: int, state_url: str) -> None:
    clock = FakeClock()
    engine = open_engine(state_url)
    try:
        first = DaemonLease(engine, clock)
        first.pid = zombie
        first.try_acquire()
        second = DaemonLease(engine, clock)
        taken = second.try_acquire()  # no waiting for the TTL
        assert taken is not None
        assert (taken.previous.pid, taken.reason) == (zombie, "its process is a zombie")
        holder = holder_of(engine)
        assert holder is not None
        assert holder.pid == os.getpid()
    finally:
        engine.dispose()


def test_two_standbys_cannot_both_take_a_stale_lease(state_url: str) -> None:
    clock = FakeClock()
    engine = open_engine(state_url)
    try:
        dead = DaemonLease(engine, clock, ttl=10)
        dead.host = "gone-host"
        dead.try_acquire()
        clock.advance(11)
        a, b = DaemonLease(engine, clock, ttl=10), DaemonLease(engine, clock, ttl=10)
        a.host, b.host = "host-a", "host-b"
        # Both find the row stale; only the first compare-and-swap wins.
        assert a.try_acquire() is not None
        with pytest.raises(Exception, match="another devskyy watch holds this state store"):
            b.try_acquire()
        with pytest.raises(Exception, match="taken over"):
            dead.renew()
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_fence_refuses_the_apply_of_a_leader_that_lost_its_lease(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    clock = FakeClock()
    tree = tmp_path / "m"
    tree.mkdir()
    (tree / "echo.yaml").write_text(
        AGENT.format(name="echo", module="devskyy.agents.scanner:ScannerAgent", priority="low")
    )

    def scenario(url: str) -> None:
        engine = open_engine(url)
        try:
            store = SqlStateStore(engine)
            lease = DaemonLease(engine, clock, ttl=10)
            lease.try_acquire()
            reconciler = Reconciler(store, clock, fence=lease.fence)
            assert reconciler.apply_tree(tree).revision is not None
            clock.advance(11)  # the leader stalls; a standby on another host takes over
            standby = DaemonLease(engine, clock, ttl=10)
            standby.host = "other-host"
            assert standby.try_acquire() is not None
            (tree / "echo.yaml").write_text(
                AGENT.format(
                    name="echo", module="devskyy.agents.scanner:ScannerAgent", priority="high"
                )
            )
            with pytest.raises(LeaseLost):
                reconciler.apply_tree(tree)
            assert store.current_revision() == 1  # all or nothing: no revision 2
            assert [a.spec.priority for a in store.live().agents] == ["low"]
            # The new leader applies the same change.
            Reconciler(store, clock, fence=standby.fence).apply_tree(tree)
            assert store.current_revision() == 2
        finally:
            engine.dispose()

    if backend == "sqlite":
        scenario(f"sqlite:///{tmp_path / 'state.db'}")
    else:
        with fresh_database(request.getfixturevalue("server_url")) as url:
            scenario(url)
