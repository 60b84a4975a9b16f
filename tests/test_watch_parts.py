"""The watch daemon's parts: debounce arithmetic, the store lease, pull-mode git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from devskyy.adapters.clock import FakeClock
from devskyy.adapters.daemon_lock import DaemonLease, LockHeld, holder_of
from devskyy.adapters.db import open_engine
from devskyy.adapters.git_source import GitError, GitSource
from devskyy.adapters.watcher import relevant
from devskyy.cli import main
from devskyy.core.debounce import Debounce, deadline, due, hint, next_wakeup


def test_debounce_waits_for_quiet_then_fires_once() -> None:
    state = Debounce()
    assert not state.pending
    assert deadline(state, 0.3, 2.0) is None
    state = hint(state, "a.yaml", 10.0)
    state = hint(state, "b.yaml", 10.2)
    assert state.paths == frozenset({"a.yaml", "b.yaml"})
    assert deadline(state, 0.3, 2.0) == pytest.approx(10.5)
    assert not due(state, 10.49, 0.3, 2.0)
    assert due(state, 10.5, 0.3, 2.0)


def test_debounce_max_wait_bounds_a_continuous_stream() -> None:
    state = Debounce()
    t = 0.0
    for _ in range(30):
        state = hint(state, "a.yaml", t)
        t += 0.1
    # Hints every 0.1 s never leave 0.3 s of quiet; max_wait (2 s) forces the pass.
    assert deadline(state, 0.3, 2.0) == pytest.approx(2.0)


def test_next_wakeup_is_the_earlier_of_resync_and_debounce() -> None:
    assert next_wakeup(Debounce(), last_pass_at=100.0, interval=60, quiet=0.3, max_wait=2) == 160
    pending = hint(Debounce(), "x.yaml", 120.0)
    assert next_wakeup(pending, 100.0, 60, 0.3, 2) == pytest.approx(120.3)


def test_relevant_filters_paths(tmp_path: Path) -> None:
    root = tmp_path / "manifests"
    root.mkdir()
    src = tmp_path / "agent.py"
    sources = frozenset({src.resolve()})
    assert relevant(str(root / "a.yaml"), root.resolve(), sources)
    assert relevant(str(root / "sub" / "b.yml"), root.resolve(), sources)
    assert not relevant(str(root / ".git" / "x.yaml"), root.resolve(), sources)
    assert not relevant(str(root / "notes.txt"), root.resolve(), sources)
    assert not relevant(str(tmp_path / "elsewhere.yaml"), root.resolve(), sources)
    assert relevant(str(src), root.resolve(), sources)
    assert not relevant(str(tmp_path / "other.py"), root.resolve(), sources)


def test_second_lease_names_the_holder(state_url: str) -> None:
    clock = FakeClock()
    engine = open_engine(state_url)
    first = DaemonLease(engine, clock, ttl=30)
    first.acquire()
    second = DaemonLease(engine, clock, ttl=30)
    second.pid = first.pid + 100_000  # another (live-looking) process on this host
    second.host = "other-host"
    with pytest.raises(LockHeld) as err:
        second.acquire()
    assert str(err.value) == (
        f"another devskyy watch holds this state store: pid {first.pid} on {first.host}"
    )
    holder = holder_of(engine)
    assert holder is not None
    assert holder.pid == first.pid


def test_stale_lease_is_taken_over_and_old_holder_cannot_renew(state_url: str) -> None:
    clock = FakeClock()
    engine = open_engine(state_url)
    first = DaemonLease(engine, clock, ttl=30)
    first.acquire()
    clock.advance(31)
    second = DaemonLease(engine, clock, ttl=30)
    second.host = "other-host"
    second.acquire()
    with pytest.raises(Exception, match="taken over"):
        first.renew()
    second.renew()
    second.release()
    assert holder_of(engine) is None


def test_lease_of_a_dead_local_process_is_taken_over(state_url: str) -> None:
    clock = FakeClock()
    engine = open_engine(state_url)
    dead = subprocess.Popen(["true"])
    dead.wait()
    first = DaemonLease(engine, clock, ttl=30)
    first.pid = dead.pid
    first.acquire()
    second = DaemonLease(engine, clock, ttl=30)
    second.acquire()  # same host, holder pid is gone: no need to wait for the ttl
    holder = holder_of(engine)
    assert holder is not None
    assert holder.pid == second.pid


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    repo = tmp_path / "origin"
    repo.mkdir()
    _git("init", "-q", "-b", "main", cwd=repo)
    _git("config", "user.email", "t@example.com", cwd=repo)
    _git("config", "user.name", "t", cwd=repo)
    (repo / "a.yaml").write_text("a: 1\n")
    _git("add", "-A", cwd=repo)
    _git("commit", "-qm", "one", cwd=repo)
    return repo


def test_git_source_clones_then_fast_forwards(origin: Path, tmp_path: Path) -> None:
    source = GitSource(str(origin), "main", tmp_path / "checkout")
    first = source.sync()
    assert first.changed
    assert first.commit == _git("rev-parse", "HEAD", cwd=origin)
    assert source.sync().changed is False
    (origin / "a.yaml").write_text("a: 2\n")
    _git("commit", "-qam", "two", cwd=origin)
    second = source.sync()
    assert second.changed
    assert second.commit == _git("rev-parse", "HEAD", cwd=origin)
    assert (tmp_path / "checkout" / "a.yaml").read_text() == "a: 2\n"


def test_git_source_refuses_a_rewritten_branch(origin: Path, tmp_path: Path) -> None:
    source = GitSource(str(origin), "main", tmp_path / "checkout")
    source.sync()
    (origin / "a.yaml").write_text("a: 3\n")
    _git("commit", "-q", "--amend", "-am", "rewritten", cwd=origin)
    with pytest.raises(GitError, match="cannot be fast-forwarded"):
        source.sync()


def test_git_source_reports_a_missing_branch(origin: Path, tmp_path: Path) -> None:
    with pytest.raises(GitError, match="git clone failed"):
        GitSource(str(origin), "nope", tmp_path / "checkout").sync()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval", "0"], "Invalid value for '--interval': 0.0 is not in the range x>=0.1."),
        (
            ["--debounce", "-1"],
            "Invalid value for '--debounce': -1.0 is not in the range 0.0<=x<=60.0.",
        ),
        (["--port", "70000"], "Invalid value for '--port': 70000 is not in the range 0<=x<=65535."),
    ],
)
def test_watch_refuses_values_that_would_spin_or_cannot_work(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["watch", "manifests", *args])
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == f"Error: {message}"
