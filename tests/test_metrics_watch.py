"""Metrics a Prometheus user expects: process, Python, build info, and the daemon's own.

The watch daemon's figures (last sync time and result, live revision, reconcile errors,
pass duration, orphans) are observed in-process with the fake clock, then served by a
real ``devskyy watch --metrics-port`` without ``--serve``. Every exposition is checked
with ``promtool check metrics`` when promtool is installed (Debian: ``prometheus``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.watcher import MemoryWatcher
from devskyy.api.metrics import ApiMetrics
from devskyy.errors import DevskyyError
from devskyy.runtime.daemon import PassOutcome, WatchDaemon, WatchSettings
from devskyy.runtime.system import open_system
from devskyy.runtime.watch_metrics import (
    DaemonMetrics,
    devskyy_version,
    result_of,
    serve_metrics,
    standard_collectors,
)

AGENT = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: {name}
spec:
  module: fake_agents:SucceedAgent
  priority: {priority}
"""

PROMTOOL = shutil.which("promtool")


def promtool_check(text: bytes) -> None:
    """``promtool check metrics`` must accept the exposition (lint problems included)."""
    if PROMTOOL is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    done = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, (done.stdout + done.stderr).decode()


@pytest.fixture(autouse=True)
def _allow_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_agents")


def test_result_of_each_kind_of_pass() -> None:
    assert result_of(PassOutcome("start", counts={"created": 1, "updated": 0})) == "applied"
    assert result_of(PassOutcome("resync", counts={"created": 0})) == "in_sync"
    assert result_of(PassOutcome("change", rejected=["a.yaml:1:1: x: y"])) == "rejected"
    assert result_of(PassOutcome("change", error="git fetch failed")) == "error"


def test_standard_collectors_and_build_info() -> None:
    registry = CollectorRegistry()
    standard_collectors(registry)
    labels = {
        "version": devskyy_version(),
        "python_version": ".".join(map(str, sys.version_info[:3])),
        "python_implementation": "CPython",
    }
    assert registry.get_sample_value("devskyy_build_info", labels) == 1.0
    assert registry.get_sample_value("process_resident_memory_bytes") > 0
    assert registry.get_sample_value("process_start_time_seconds") > 0
    assert registry.get_sample_value("python_gc_collections_total", {"generation": "0"}) >= 0
    text = registry_text(registry)
    assert "python_info{" in text
    promtool_check(text.encode())


def registry_text(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def test_daemon_passes_become_metrics(tmp_path: Path, state_url: str) -> None:
    clock = FakeClock()
    metrics = DaemonMetrics()

    async def scenario() -> None:
        system = await open_system(state_url, clock=clock, start_agents=False)
        try:
            tree = tmp_path / "manifests"
            tree.mkdir()
            (tree / "a.yaml").write_text(AGENT.format(name="a", priority="medium"))
            (tree / "b.yaml").write_text(AGENT.format(name="b", priority="low"))
            daemon = WatchDaemon(system, WatchSettings(path=tree), MemoryWatcher())
            daemon.observers.append(metrics.observe)
            first = await daemon.reconcile("start")
            assert first.changed == ["create Agent/a", "create Agent/b"]
            clock.advance(30)
            (tree / "a.yaml").write_text(AGENT.format(name="a", priority="urgent"))
            await daemon.reconcile("change")
            clock.advance(30)
            (tree / "a.yaml").write_text(AGENT.format(name="a", priority="high"))
            (tree / "b.yaml").unlink()
            third = await daemon.reconcile("change")
            assert third.changed == ["update Agent/a"]
            assert third.orphans == ["Agent/b"]
        finally:
            await system.close()

    asyncio.run(scenario())
    get = metrics.registry.get_sample_value
    start = FakeClock().now()
    assert get("devskyy_watch_last_sync_timestamp_seconds") == start + 60
    assert get("devskyy_watch_last_success_timestamp_seconds") == start + 60
    assert get("devskyy_watch_last_sync_result", {"result": "applied"}) == 1.0
    assert get("devskyy_watch_last_sync_result", {"result": "rejected"}) == 0.0
    assert get("devskyy_watch_revision") == 2.0
    assert get("devskyy_watch_orphans") == 1.0
    assert get("devskyy_watch_reconcile_errors_total", {"result": "rejected"}) == 1.0
    assert get("devskyy_watch_reconcile_errors_total", {"result": "error"}) == 0.0
    assert get("devskyy_watch_passes_total", {"reason": "change", "result": "applied"}) == 1.0
    assert get("devskyy_watch_passes_total", {"reason": "start", "result": "applied"}) == 1.0
    assert get("devskyy_watch_pass_duration_seconds_count") == 3.0
    promtool_check(metrics.render())


def test_a_rejected_pass_keeps_the_last_success_and_revision() -> None:
    metrics = DaemonMetrics()
    metrics.observe(PassOutcome("start", revision=4, counts={"created": 1}, finished_at=100.0))
    metrics.observe(PassOutcome("change", rejected=["x"], finished_at=160.0, seconds=0.2))
    get = metrics.registry.get_sample_value
    assert get("devskyy_watch_last_sync_timestamp_seconds") == 160.0
    assert get("devskyy_watch_last_success_timestamp_seconds") == 100.0
    assert get("devskyy_watch_revision") == 4.0
    assert get("devskyy_watch_last_sync_result", {"result": "rejected"}) == 1.0
    assert get("devskyy_watch_last_sync_result", {"result": "applied"}) == 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_metrics_on_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(DevskyyError) as caught:
            serve_metrics(CollectorRegistry(), "127.0.0.1", port)
    assert str(caught.value) == f"cannot serve metrics on 127.0.0.1:{port}: Address already in use"


def _scrape(url: str, want: str, proc: subprocess.Popen[str], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                last = response.read().decode()
        except OSError:
            last = ""
        if want in last:
            return last
        time.sleep(0.1)  # polling a real subprocess, not timing logic
    raise AssertionError(f"{want!r} never appeared in {url}:\n{last}")


@pytest.mark.slow
def test_watch_serves_its_metrics_without_serve(tmp_path: Path) -> None:
    tree = tmp_path / "manifests"
    tree.mkdir()
    (tree / "a.yaml").write_text(AGENT.format(name="a", priority="medium"))
    tests = Path(__file__).resolve().parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tests), *sys.path]),
        "DEVSKYY_ALLOWED_MODULES": "fake_agents",
        "NO_COLOR": "1",
    }
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "devskyy.cli", "watch", "manifests", "--metrics-port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        text = _scrape(f"http://127.0.0.1:{port}/metrics", "devskyy_watch_revision 1.0", proc)
        assert 'devskyy_watch_last_sync_result{result="applied"} 1.0' in text
        assert "devskyy_build_info{" in text
        assert "process_cpu_seconds_total" in text
        assert "devskyy_http_requests" not in text  # the daemon's own, not the API's
        promtool_check(text.encode())
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"metrics on http://127.0.0.1:{port}/metrics" in err


@pytest.mark.slow
def test_watch_metrics_port_in_use_exits_1(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "devskyy.cli",
                "watch",
                "manifests",
                "--metrics-port",
                str(port),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        f"error: cannot serve metrics on 127.0.0.1:{port}: Address already in use"
    )


def test_watch_logs_name_what_changed_and_the_orphans_once(tmp_path: Path, state_url: str) -> None:
    async def scenario() -> None:
        system = await open_system(state_url, clock=FakeClock(), start_agents=False)
        try:
            tree = tmp_path / "manifests"
            tree.mkdir()
            (tree / "a.yaml").write_text(AGENT.format(name="a", priority="medium"))
            (tree / "b.yaml").write_text(AGENT.format(name="b", priority="low"))
            daemon = WatchDaemon(system, WatchSettings(path=tree), MemoryWatcher())
            await daemon.reconcile("start")
            (tree / "b.yaml").unlink()
            (tree / "a.yaml").write_text(AGENT.format(name="a", priority="high"))
            await daemon.reconcile("change")
            await daemon.reconcile("resync")  # the same orphan: not warned about again
        finally:
            await system.close()

    # A handler on the daemon's own logger sees each record exactly once, whatever other
    # tests left on the "devskyy" and root loggers (propagation, capture handlers).
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = records.append  # type: ignore[method-assign]
    watch_logger = logging.getLogger("devskyy.watch")
    level = watch_logger.level
    watch_logger.setLevel(logging.INFO)
    watch_logger.addHandler(handler)
    try:
        asyncio.run(scenario())
    finally:
        watch_logger.removeHandler(handler)
        watch_logger.setLevel(level)
    messages = [r.getMessage() for r in records]
    assert "applied revision 1: create Agent/a, create Agent/b" in messages
    assert "applied revision 2: update Agent/a" in messages
    orphan = "not in the manifests, kept (--prune would delete): Agent/b"
    assert messages.count(orphan) == 1
    record = next(r for r in records if r.getMessage() == orphan)
    assert record.levelname == "WARNING"
    assert record.fields == {"orphans": ["Agent/b"]}  # type: ignore[attr-defined]


def test_the_api_metrics_page_passes_promtool(state_url: str) -> None:
    async def page() -> bytes:
        system = await open_system(state_url, clock=FakeClock(), start_agents=False)
        try:
            metrics = ApiMetrics(system)
            metrics.requests.labels("GET", "/healthz", "200").inc()
            return metrics.render()
        finally:
            await system.close()

    text = asyncio.run(page())
    assert b"devskyy_build_info{" in text
    assert b"process_resident_memory_bytes" in text
    promtool_check(text)


@pytest.mark.slow
def test_watch_serve_puts_the_daemon_metrics_on_the_api_metrics(tmp_path: Path) -> None:
    tree = tmp_path / "manifests"
    tree.mkdir()
    (tree / "a.yaml").write_text(AGENT.format(name="a", priority="medium"))
    for role in (tests_root := Path(__file__).resolve().parents[1]).glob("manifests/roles/*.yaml"):
        (tree / role.name).write_text(role.read_text())  # the admin role the key needs
    (tmp_path / "workspace").mkdir()
    tests = tests_root / "tests"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tests), *sys.path]),
        "DEVSKYY_ALLOWED_MODULES": "fake_agents",
        "NO_COLOR": "1",
    }
    key = subprocess.run(
        [sys.executable, "-m", "devskyy.cli", "keys", "create", "ops", "--role", "admin"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "devskyy.cli", "watch", "manifests", "--serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        text = ""
        while "devskyy_watch_revision 1.0" not in text:
            assert time.monotonic() < deadline, text
            assert proc.poll() is None, proc.communicate()[1]
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/metrics", headers={"X-API-Key": key}
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    text = response.read().decode()
            except OSError:
                text = ""
            time.sleep(0.1)  # polling a real subprocess, not timing logic
        assert "devskyy_http_requests_total" in text  # the API's own figures too
        promtool_check(text.encode())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
