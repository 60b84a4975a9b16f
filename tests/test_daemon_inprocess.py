"""The watch daemon in-process, with the in-memory watcher: passes, rejection, the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from devskyy.adapters.watcher import MemoryWatcher
from devskyy.runtime.daemon import (
    STOP,
    WatchDaemon,
    WatchSettings,
    describe_outcome,
    module_file,
)
from devskyy.runtime.system import open_system

T = TypeVar("T")

AGENT = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: {name}
spec:
  module: fake_agents:SucceedAgent
  priority: {priority}
"""


@pytest.fixture(autouse=True)
def _allow_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_agents")


def _tree(root: Path, priority: str = "medium") -> Path:
    tree = root / "manifests"
    tree.mkdir(exist_ok=True)
    (tree / "a.yaml").write_text(AGENT.format(name="a", priority=priority))
    return tree


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def test_a_pass_applies_and_builds_agents_then_a_bad_change_is_rejected(
    tmp_path: Path, state_url: str
) -> None:
    async def scenario() -> list[dict[str, object]]:
        system = await open_system(state_url, start_agents=False)
        try:
            tree = _tree(tmp_path)
            daemon = WatchDaemon(system, WatchSettings(path=tree), MemoryWatcher())
            first = await daemon.reconcile("start")
            (tree / "a.yaml").write_text(AGENT.format(name="a", priority="urgent"))
            bad = await daemon.reconcile("change", frozenset({str(tree / "a.yaml")}))
            (tree / "a.yaml").write_text(AGENT.format(name="a", priority="high"))
            good = await daemon.reconcile("change")
            assert system.registry.get_agent("a") is not None
            return [describe_outcome(o) for o in (first, bad, good)]
        finally:
            await system.close()

    first, bad, good = run(scenario())
    assert first["revision"] == 1
    assert first["counts"] == {"created": 1, "updated": 0, "deleted": 0}
    assert first["agents"] == {"a": "registered"}
    assert bad["revision"] == 1  # rejected: revision 1 keeps running, and is reported
    assert bad["rejected"] == [
        f"{tmp_path}/manifests/a.yaml:7:3: spec.priority: "
        "'urgent' is not one of critical, high, medium, low"
    ]
    assert good["revision"] == 2
    assert good["agents"] == {"a": "updated"}


def test_the_loop_debounces_hints_into_one_pass_and_stops(tmp_path: Path, state_url: str) -> None:
    async def scenario() -> list[str]:
        system = await open_system(state_url, start_agents=False)
        try:
            tree = _tree(tmp_path)
            watcher = MemoryWatcher()
            settings = WatchSettings(path=tree, debounce=0.05, interval=3600)
            daemon = WatchDaemon(system, settings, watcher)
            loop = asyncio.create_task(daemon.run())
            while not daemon.passes:
                await asyncio.sleep(0.01)
            (tree / "a.yaml").write_text(AGENT.format(name="a", priority="low"))
            for _ in range(5):  # a burst of saves
                watcher.emit(str(tree / "a.yaml"))
            while len(daemon.passes) < 2:
                await asyncio.sleep(0.01)
            watcher.emit(STOP)
            await asyncio.wait_for(loop, 10)
            assert watcher.started is False
            return [p.reason for p in daemon.passes]
        finally:
            await system.close()

    assert run(scenario()) == ["start", "change"]


def test_module_file_finds_a_source_without_importing_it() -> None:
    path = module_file("devskyy.agents.scanner:ScannerAgent")
    assert path is not None
    assert path.name == "scanner.py"
    assert module_file("no_such_package.mod:Cls") is None


def test_sighup_resync_spends_pending_hints(tmp_path: Path, state_url: str) -> None:
    async def scenario() -> list[str]:
        system = await open_system(state_url, start_agents=False)
        try:
            tree = _tree(tmp_path)
            watcher = MemoryWatcher()
            # A long debounce: only the resync can pick the edit up in this test.
            settings = WatchSettings(path=tree, debounce=30, max_wait=60, interval=3600)
            daemon = WatchDaemon(system, settings, watcher)
            loop = asyncio.create_task(daemon.run())
            while not daemon.passes:
                await asyncio.sleep(0.01)
            (tree / "a.yaml").write_text(AGENT.format(name="a", priority="low"))
            watcher.emit(str(tree / "a.yaml"))
            daemon.request_resync()
            while len(daemon.passes) < 2:
                await asyncio.sleep(0.01)
            daemon.request_stop()
            await asyncio.wait_for(loop, 10)
            return [f"{p.reason}:{p.revision}" for p in daemon.passes]
        finally:
            await system.close()

    # The edit is applied by the SIGHUP pass, and no second pass follows for its hint.
    assert run(scenario()) == ["start:1", "sighup:2"]
