"""The watch daemon is crash-only: failed passes are logged and retried, never fatal.

In-process, with the fake clock and the in-memory watcher: the loop's waits go through the
clock seam, so the backoff between retries is read from ``FakeClock.sleeps`` and nothing
sleeps for real. Observers (called after every pass) drive each scenario and stop the loop.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.exc import OperationalError

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.daemon_lock import DaemonLease, LeaseLost, holder_of
from devskyy.adapters.logs import configure
from devskyy.adapters.state_store import SqlStateStore
from devskyy.adapters.watcher import MemoryWatcher
from devskyy.cli import main
from devskyy.model.resources import ResourceSet
from devskyy.runtime.daemon import PassOutcome, WatchDaemon, WatchSettings
from devskyy.runtime.reconciler import load_tree
from devskyy.runtime.system import System, open_system

AGENT = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: {name}
spec:
  module: fake_agents:SucceedAgent
  priority: {priority}
"""


EXAMPLE = "e.g. sqlite:///.devskyy/state.db or postgresql+psycopg://user@host/db"


@pytest.fixture(autouse=True)
def _allow_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_agents")


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The daemon's log as JSON lines in a buffer; the logger is restored afterwards."""
    logger = logging.getLogger("devskyy")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    buffer = io.StringIO()
    configure("json", stream=buffer)
    yield buffer
    logger.handlers[:] = saved[0]
    logger.propagate = saved[1]
    logger.setLevel(saved[2])


def _records(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def _tree(root: Path, priority: str = "medium") -> Path:
    tree = root / "manifests"
    tree.mkdir(exist_ok=True)
    (tree / "a.yaml").write_text(AGENT.format(name="a", priority=priority))
    return tree


class FlakyStore(SqlStateStore):
    """The SQL store, except that reading live state fails ``failures`` times first."""

    def __init__(self, engine: Any, failures: int) -> None:
        super().__init__(engine)
        self.failures = failures

    def live(self) -> ResourceSet:
        if self.failures > 0:
            self.failures -= 1
            raise OperationalError("SELECT …", {}, Exception("database is locked"))
        return super().live()


def _run_daemon(daemon: WatchDaemon, stop_when: Any) -> None:
    def observe(outcome: PassOutcome) -> None:
        if stop_when(outcome):
            daemon.request_stop()

    daemon.observers.append(observe)


def test_store_errors_are_retried_with_backoff_until_the_store_answers(
    tmp_path: Path, state_url: str, json_log: io.StringIO
) -> None:
    clock = FakeClock()

    async def scenario() -> tuple[list[PassOutcome], System]:
        system = await open_system(state_url, clock=clock, start_agents=False)
        try:
            system.state = FlakyStore(system.engine, failures=3)
            settings = WatchSettings(path=_tree(tmp_path), interval=3600)
            daemon = WatchDaemon(system, settings, MemoryWatcher())
            _run_daemon(daemon, lambda o: o.error is None)
            await asyncio.wait_for(daemon.run(), 30)
            return daemon.passes, system
        finally:
            await system.close()

    passes, _system = asyncio.run(scenario())
    assert [(p.reason, p.revision) for p in passes] == [
        ("start", None),
        ("retry", None),
        ("retry", None),
        ("retry", 1),
    ]
    # One line: the SQL stays in the traceback field of the log.
    assert [p.error for p in passes[:3]] == [
        "OperationalError: (builtins.Exception) database is locked"
    ] * 3
    assert clock.sleeps == [1.0, 2.0, 4.0]  # the backoff, on the clock seam
    failed = [r for r in _records(json_log) if r["message"].startswith("pass failed")]
    assert [r["message"] for r in failed] == [
        "pass failed; the last good state keeps running; retrying in 1s",
        "pass failed; the last good state keeps running; retrying in 2s",
        "pass failed; the last good state keeps running; retrying in 4s",
    ]
    assert [r["failures"] for r in failed] == [1, 2, 3]
    assert all(r["level"] == "error" for r in failed)
    assert "Traceback (most recent call last)" in failed[0]["traceback"]
    assert "OperationalError" in failed[0]["traceback"]


def test_a_bug_in_a_pass_keeps_the_last_good_state_and_is_logged_with_its_traceback(
    tmp_path: Path,
    state_url: str,
    json_log: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    real_load = load_tree

    def broken(path: Path) -> ResourceSet:
        raise ZeroDivisionError("division by zero")

    def script(outcome: PassOutcome) -> bool:
        if outcome.reason == "start":  # good: now a bug hits the next passes
            monkeypatch.setattr("devskyy.runtime.daemon.load_tree", broken)
        elif outcome.error is not None and outcome.reason == "retry":
            monkeypatch.setattr("devskyy.runtime.daemon.load_tree", real_load)  # fixed
        return outcome.error is None and outcome.reason == "retry"

    async def scenario() -> tuple[list[PassOutcome], bool]:
        system = await open_system(state_url, clock=clock, start_agents=False)
        try:
            settings = WatchSettings(path=_tree(tmp_path), interval=60)
            daemon = WatchDaemon(system, settings, MemoryWatcher())
            _run_daemon(daemon, script)
            await asyncio.wait_for(daemon.run(), 30)
            return daemon.passes, system.registry.get_agent("a") is not None
        finally:
            await system.close()

    passes, still_running = asyncio.run(scenario())
    assert [(p.reason, p.error) for p in passes] == [
        ("start", None),
        ("resync", "ZeroDivisionError: division by zero"),
        ("retry", "ZeroDivisionError: division by zero"),
        ("retry", None),
    ]
    assert still_running  # the agents of revision 1 kept running through the failures
    assert clock.sleeps == [60.0, 1.0, 2.0]
    [first, second] = [r for r in _records(json_log) if r["message"].startswith("pass failed")]
    assert first["error"] == "ZeroDivisionError: division by zero"
    assert first["reason"] == "resync"
    assert first["traceback"].rstrip().endswith("ZeroDivisionError: division by zero")
    assert "in broken" in first["traceback"]
    assert second["retry_in"] == 2.0


def test_an_observer_that_raises_does_not_end_the_daemon(
    tmp_path: Path, state_url: str, json_log: io.StringIO
) -> None:
    async def scenario() -> list[str]:
        system = await open_system(state_url, clock=FakeClock(), start_agents=False)
        try:
            daemon = WatchDaemon(
                system, WatchSettings(path=_tree(tmp_path), interval=5), MemoryWatcher()
            )

            def bad(outcome: PassOutcome) -> None:
                raise RuntimeError("metrics exporter broke")

            daemon.observers.append(bad)
            _run_daemon(daemon, lambda o: o.reason == "resync")
            await asyncio.wait_for(daemon.run(), 30)
            return [p.reason for p in daemon.passes]
        finally:
            await system.close()

    assert asyncio.run(scenario()) == ["start", "resync"]
    assert [r["message"] for r in _records(json_log)].count("pass observer failed") == 2


def test_the_watcher_is_rechecked_before_every_pass_after_the_first(
    tmp_path: Path, state_url: str
) -> None:
    watcher = MemoryWatcher()

    async def scenario() -> list[str]:
        system = await open_system(state_url, clock=FakeClock(), start_agents=False)
        try:
            daemon = WatchDaemon(system, WatchSettings(path=_tree(tmp_path), interval=5), watcher)
            _run_daemon(daemon, lambda o: len(daemon.passes) == 3)
            await asyncio.wait_for(daemon.run(), 30)
            return [p.reason for p in daemon.passes]
        finally:
            await system.close()

    assert asyncio.run(scenario()) == ["start", "resync", "resync"]
    assert watcher.checks == 2  # a folder swapped without an event is caught by the next pass


def test_a_lost_lease_fences_the_apply_and_ends_the_loop(tmp_path: Path, state_url: str) -> None:
    clock = FakeClock()

    async def scenario() -> tuple[int | None, int | None, str]:
        system = await open_system(state_url, clock=clock, start_agents=False)
        try:
            lease = DaemonLease(system.engine, clock, ttl=10)
            lease.try_acquire()
            tree = _tree(tmp_path)
            daemon = WatchDaemon(system, WatchSettings(path=tree), MemoryWatcher(), lease=lease)
            await daemon.reconcile("start")
            # The leader is paused past its TTL; a standby elsewhere takes the lease.
            clock.advance(11)
            standby = DaemonLease(system.engine, clock, ttl=10)
            standby.host = "other-host"
            taken = standby.try_acquire()
            assert taken is not None
            assert taken.reason == "no heartbeat for 11.0s (ttl 10s)"
            # The old leader wakes up with a change to apply: the fence refuses it.
            (tree / "a.yaml").write_text(AGENT.format(name="a", priority="high"))
            with pytest.raises(LeaseLost) as lost:
                await daemon.reconcile("change")
            before = system.state.current_revision()
            holder = holder_of(system.engine)
            assert holder is not None
            return before, holder.pid, str(lost.value)
        finally:
            await system.close()

    revision, _pid, message = asyncio.run(scenario())
    assert revision == 1  # no second revision from the daemon that lost the lease
    assert message == (
        "the daemon lease was taken over by another process; this daemon stops applying"
    )


def test_a_lost_lease_at_renewal_ends_run(tmp_path: Path, state_url: str) -> None:
    clock = FakeClock()

    async def scenario() -> list[str]:
        system = await open_system(state_url, clock=clock, start_agents=False)
        try:
            lease = DaemonLease(system.engine, clock, ttl=9)
            lease.try_acquire()
            daemon = WatchDaemon(
                system,
                WatchSettings(path=_tree(tmp_path), interval=3600),
                MemoryWatcher(),
                lease=lease,
            )

            def steal(outcome: PassOutcome) -> None:
                clock.advance(10)
                other = DaemonLease(system.engine, clock, ttl=9)
                other.host = "other-host"
                other.try_acquire()

            daemon.observers.append(steal)
            with pytest.raises(LeaseLost):
                await asyncio.wait_for(daemon.run(), 30)
            return [p.reason for p in daemon.passes]
        finally:
            await system.close()

    assert asyncio.run(scenario()) == ["start"]


@pytest.mark.parametrize(
    ("log_format", "expected"),
    [
        (
            "text",
            f"error: state URL 'nosuchdb://x/y': unknown database driver 'nosuchdb' ({EXAMPLE})\n",
        ),
        ("json", None),
    ],
)
def test_an_unusable_store_url_exits_5_in_the_chosen_log_format(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    json_log: io.StringIO,
    log_format: str,
    expected: str | None,
) -> None:
    monkeypatch.chdir(tmp_path)
    _tree(tmp_path)
    args = ["--state", "nosuchdb://x/y", "watch", "manifests", "--log-format", log_format]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 5
    if expected is not None:
        assert result.stderr == expected
        return
    [record] = [json.loads(line) for line in result.stderr.splitlines()]
    assert record["level"] == "critical"
    assert record["exit_code"] == 5
    assert record["message"] == (
        f"stopping: state URL 'nosuchdb://x/y': unknown database driver 'nosuchdb' ({EXAMPLE})"
    )
