"""``devskyy watch`` as a real process whose JSON log lines the test reads (the watch and
webhook daemon tests)."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class Daemon:
    """A running ``devskyy watch`` whose JSON log lines are collected in a thread."""

    def __init__(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devskyy.cli", "watch", *args, "--log-format", "json"],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                self.lines.put(json.loads(line))
            except json.JSONDecodeError:
                self.lines.put({"message": line.rstrip()})

    def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout: float = 30) -> Any:
        """The first log record (seen or coming) that ``match`` accepts."""
        for record in self.seen:
            if match(record):
                return record
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                record = self.lines.get(timeout=0.05)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(record)
            if match(record):
                return record
        messages = [r.get("message") for r in self.seen]
        raise AssertionError(f"no matching log line; saw {messages}")

    def drain(self, seconds: float) -> None:
        """Collect every line logged in the next ``seconds`` into ``seen``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.seen.append(self.lines.get(timeout=0.05))
            except queue.Empty:
                continue

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=60)
        self.reader.join(timeout=10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return code


def message(prefix: str) -> Callable[[dict[str, Any]], bool]:
    """Matches a log record whose message starts with ``prefix``."""
    return lambda r: str(r.get("message", "")).startswith(prefix)
