"""Progress a person can watch (issue 18.6): agents report it, ``devskyy run`` shows it.

On a terminal, each running step has a live line at the bottom, redrawn in place as its
agent reports progress; piped output and ``-o json`` get nothing extra. Checked with the
``Progress`` listener directly (a fake terminal and clock) and with real processes on a
pseudo-terminal and on a pipe.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from devskyy.cli import _common
from devskyy.cli.runs import Progress
from devskyy.model.runs import RunRecord, StepRecord, StepStatus
from devskyy.runtime import progress
from devskyy.runtime.progress import StepProgress
from devskyy.runtime.step_context import StepRef, in_step

CLEAR_ONE = "\x1b[1F\x1b[J"
RUN = RunRecord(id="r1", workflow="w")


class Terminal:
    def __init__(self) -> None:
        self.text = ""
        self.now = 100.0

    def write(self, text: str) -> None:
        self.text += text

    def monotonic(self) -> float:
        return self.now


def test_progress_text() -> None:
    assert str(StepProgress(3, 5, "checks")) == "3/5 checks (60%)"
    assert str(StepProgress(7, None, "files")) == "7 files"
    assert str(StepProgress(0, 0, "files")) == "0/0 files"


def test_a_report_reaches_the_listener_with_its_step() -> None:
    seen: list[tuple[StepRef | None, StepProgress]] = []
    progress.report(1, 2)  # nobody listens: nothing happens
    with progress.listening(lambda ref, p: seen.append((ref, p))):
        with in_step("r1", "scan"):
            progress.report(1, 2, "files")
        progress.report(-3)
    progress.report(2, 2)
    assert seen == [
        (StepRef("r1", "scan"), StepProgress(1, 2, "files")),
        (None, StepProgress(0, None, "items")),
    ]


def test_live_lines_are_redrawn_in_place_and_throttled() -> None:
    term = Terminal()
    live = Progress(False, live=True, write=term.write, monotonic=term.monotonic)
    live(RUN, StepRecord("scan", StepStatus.RUNNING, 1))
    assert term.text == (
        "  scan                 running    attempt 1\n"  # the step change (it stays)
        "  scan                 running    attempt 1\n"  # the live line
    )
    term.text = ""
    live.on_progress(StepRef("r1", "scan"), StepProgress(1, 4, "files"))  # the first: at once
    assert term.text == CLEAR_ONE + "  scan                 running    1/4 files (25%)\n"
    term.text = ""
    term.now += 0.05
    live.on_progress(StepRef("r1", "scan"), StepProgress(2, 4, "files"))  # 0.05 s later
    assert term.text == ""
    term.now += 1
    live(RUN, StepRecord("scan", StepStatus.SUCCEEDED, 1, duration=0.5))
    assert term.text == CLEAR_ONE + "  scan                 succeeded  1 attempt, 0.50s\n"
    assert live.drawn == 0


def test_two_running_steps_have_two_live_lines() -> None:
    term = Terminal()
    live = Progress(False, live=True, write=term.write, monotonic=term.monotonic)
    live(RUN, StepRecord("a", StepStatus.RUNNING, 1))
    live(RUN, StepRecord("b", StepStatus.RUNNING, 1))
    term.text = ""
    term.now += 1
    live.on_progress(StepRef("r1", "b"), StepProgress(5, None, "items"))
    assert term.text == (
        "\x1b[2F\x1b[J"
        "  a                    running    attempt 1\n"
        "  b                    running    5 items\n"
    )


def test_without_a_terminal_progress_prints_nothing() -> None:
    term = Terminal()
    plain = Progress(False, write=term.write, monotonic=term.monotonic)
    plain(RUN, StepRecord("scan", StepStatus.RUNNING, 1))
    plain.on_progress(StepRef("r1", "scan"), StepProgress(1, 4, "files"))
    plain(RUN, StepRecord("scan", StepStatus.SUCCEEDED, 1, duration=0.5))
    assert term.text == (
        "  scan                 running    attempt 1\n"
        "  scan                 succeeded  1 attempt, 0.50s\n"
    )
    assert "\x1b" not in term.text


def test_inside_the_loop_a_ticks_lines_go_out_in_one_write_in_order() -> None:
    writes: list[str] = []
    plain = Progress(False, write=writes.append)

    async def tick() -> list[str]:
        for name in ("a", "b", "c"):
            plain(RUN, StepRecord(name, StepStatus.RUNNING, 1))
        before = list(writes)  # nothing written yet: the flush is queued for the tick
        await asyncio.sleep(0)
        plain(RUN, StepRecord("a", StepStatus.SUCCEEDED, 1, duration=0.25))
        plain.flush()  # devskyy run flushes before its closing line
        plain.flush()  # nothing left: no empty write
        return before

    assert asyncio.run(tick()) == []
    assert writes == [
        "  a                    running    attempt 1\n"
        "  b                    running    attempt 1\n"
        "  c                    running    attempt 1\n",
        "  a                    succeeded  1 attempt, 0.25s\n",
    ]


def test_lines_within_the_flush_window_of_the_last_write_wait_for_one_write() -> None:
    term = Terminal()
    writes: list[str] = []
    plain = Progress(False, write=writes.append, monotonic=term.monotonic)

    async def go() -> list[list[str]]:
        seen = []
        plain(RUN, StepRecord("a", StepStatus.RUNNING, 1))
        await asyncio.sleep(0)
        seen.append(list(writes))  # the first line: written in the next tick
        term.now += Progress.FLUSH_SECONDS / 2
        plain(RUN, StepRecord("a", StepStatus.SUCCEEDED, 1, duration=0.25))
        plain(RUN, StepRecord("b", StepStatus.RUNNING, 1))
        await asyncio.sleep(0)
        seen.append(list(writes))  # within the window: waiting (a loop timer is set)
        term.now += Progress.FLUSH_SECONDS
        plain.flush()  # what the timer does once the window is over
        seen.append(list(writes))
        plain(RUN, StepRecord("b", StepStatus.FAILED, 1, duration=0.5, error="Boom: x"))
        term.now += Progress.FLUSH_SECONDS
        await asyncio.sleep(0)  # the window since the last write is over: the next tick
        seen.append(list(writes))
        return seen

    first = "  a                    running    attempt 1\n"
    held = (
        "  a                    succeeded  1 attempt, 0.25s\n"
        "  b                    running    attempt 1\n"
    )
    failed = "  b                    failed     1 attempt, 0.50s: Boom: x\n"
    assert asyncio.run(go()) == [[first], [first], [first, held], [first, held, failed]]


def test_a_report_from_a_worker_thread_comes_after_the_lines_collected_before_it() -> None:
    term = Terminal()
    live = Progress(False, live=True, write=term.write, monotonic=term.monotonic)

    async def go() -> None:
        live(RUN, StepRecord("scan", StepStatus.RUNNING, 1))
        report = StepProgress(1, 4, "files")
        await asyncio.to_thread(live.on_progress, StepRef("r1", "scan"), report)

    asyncio.run(go())
    assert term.text == (
        "  scan                 running    attempt 1\n"
        "  scan                 running    attempt 1\n"
        + CLEAR_ONE
        + "  scan                 running    1/4 files (25%)\n"
    )


AGENT_CODE = """\
from typing import Any
from devskyy.runtime.agent import BaseAgent
from devskyy.runtime import progress

class CountingAgent(BaseAgent):
    def __init__(self) -> None:
        super().__init__(agent_name="Counting")

    async def initialize(self) -> bool:
        self.status = BaseAgent.AgentStatus.HEALTHY
        return True

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        for done in range(1, 4):
            progress.report(done, 3, "things")
        return {"counted": 3}
"""

MANIFESTS = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata: {name: counter}
spec: {module: "progressagents.counting:CountingAgent"}
---
apiVersion: devskyy.dev/v1
kind: Workflow
metadata: {name: count}
spec:
  steps: [{name: tally, agent: counter}]
"""


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    (tmp_path / "progressagents").mkdir()
    (tmp_path / "progressagents/__init__.py").write_text("")
    (tmp_path / "progressagents/counting.py").write_text(AGENT_CODE)
    (tmp_path / "m").mkdir()
    (tmp_path / "m/all.yaml").write_text(MANIFESTS)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
        "DEVSKYY_ALLOWED_MODULES": "progressagents",
        "TERM": "xterm",
    }
    env.pop("NO_COLOR", None)
    env["NO_COLOR"] = "1"
    applied = subprocess.run(
        [sys.executable, "-m", "devskyy.cli", "apply", "m"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert applied.returncode == 0, applied.stderr
    return tmp_path, env


def _on_a_terminal(cwd: Path, env: dict[str, str], *args: str) -> str:
    main_fd, child_fd = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "devskyy.cli", *args],
        cwd=cwd,
        env=env,
        stdin=child_fd,
        stdout=child_fd,
        stderr=child_fd,
    )
    os.close(child_fd)
    chunks = []
    while True:
        ready, _, _ = select.select([main_fd], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(main_fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main_fd)
    assert proc.wait(timeout=60) == 0
    return b"".join(chunks).decode()


@pytest.mark.slow
def test_run_on_a_terminal_shows_live_progress(project: tuple[Path, dict[str, str]]) -> None:
    cwd, env = project
    screen = _on_a_terminal(cwd, env, "run", "count")
    assert "tally                running    attempt 1" in screen
    assert "\x1b[1F\x1b[J" in screen  # the live line was redrawn in place
    assert "tally                running    1/3 things (33%)" in screen
    assert "tally                succeeded" in screen


@pytest.mark.slow
def test_piped_and_json_runs_get_nothing_extra(project: tuple[Path, dict[str, str]]) -> None:
    cwd, env = project

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devskyy.cli", "run", "count", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    piped = run()
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.splitlines()
    assert lines[1:3] == [
        "  tally                running    attempt 1",
        lines[2],
    ]
    assert lines[2].startswith("  tally                succeeded  1 attempt, ")
    assert "things" not in piped.stdout
    assert "\x1b" not in piped.stdout
    as_json = run("-o", "json")
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout)["status"] == "succeeded"
    assert "things" not in as_json.stdout + as_json.stderr


def test_a_report_before_the_step_is_announced_is_kept() -> None:
    term = Terminal()
    live = Progress(False, live=True, write=term.write, monotonic=term.monotonic)
    live.on_progress(StepRef("r1", "fast"), StepProgress(1, 3, "things"))
    live(RUN, StepRecord("fast", StepStatus.RUNNING, 1))
    assert term.text == (
        "  fast                 running    1/3 things (33%)\n"
        + CLEAR_ONE
        + "  fast                 running    attempt 1\n"
        + "  fast                 running    1/3 things (33%)\n"
    )


def test_term_dumb_and_pipes_get_no_colour_or_live_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(_common.sys, "stdout", Tty())
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert (_common.use_color(), _common.live_terminal()) == (True, True)
    monkeypatch.setenv("TERM", "dumb")
    assert (_common.use_color(), _common.live_terminal()) == (False, False)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("NO_COLOR", "1")
    assert (_common.use_color(), _common.live_terminal()) == (False, True)
