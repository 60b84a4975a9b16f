"""Benchmark: from saving a manifest to its new revision being live, under ``devskyy watch``.

Starts the daemon as a real process (JSON logs, default 300 ms debounce) on a temporary
tree with one agent and one workflow, then edits the workflow 100 times, one edit at a
time, and measures the time from each save to the daemon's ``applied revision N`` log
line (the revision is committed and the runtime updated when the pass that logs it
finishes; the ``pass done`` figure includes that). The floor is the debounce itself:
no pass can start before the quiet period ends.

Target (issue 6): p99 under 0.5 s with the default debounce. Exit 1 if missed by 2x.

Push -> live (issue 16): pull mode against a local bare git repository, ``watch --git-url
--serve``. Each round commits and pushes a change, then POSTs a GitHub-signed push webhook
and measures from the request to the daemon's ``applied revision N`` line. Target: p99
under 1 s. The baseline, in the same run, is the same pushes without a webhook, found by
the poll (``--poll-interval``, 5 s here; Argo CD polls every 3 min by default).

    .venv/bin/python benchmarks/bench_watch.py [--edits N] [--debounce S]
        [--pushes N] [--polls N] [--poll-interval S]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import queue
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

AGENT = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: echo
spec:
  module: benchagents.echo:EchoAgent
  capabilities: [echo]
"""

WORKFLOW = """\
apiVersion: devskyy.dev/v1
kind: Workflow
metadata:
  name: hello
spec:
  description: edit {n}
  params:
    who: {{type: string, default: world}}
  steps:
    - name: greet
      agent: echo
      input: {{who: "${{{{ params.who }}}}"}}
"""

CODE = """\
from typing import Any
from devskyy.runtime.agent import BaseAgent

class EchoAgent(BaseAgent):
    def __init__(self) -> None:
        super().__init__(agent_name="Echo", version="1.0.0")

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        return dict(kwargs)
"""

TARGET_P99_S = 0.5
PUSH_TARGET_P99_S = 1.0
SLACK = 2.0
SECRET = b"bench-webhook-secret"
SETTLE_S = 1.5


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Logs:
    """The daemon's JSON log lines, read in a thread, with their arrival time."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: queue.Queue[tuple[float, dict[str, object]]] = queue.Queue()
        self.proc = proc
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                self.lines.put((time.perf_counter(), json.loads(line)))
            except json.JSONDecodeError:
                continue

    def wait(self, prefix: str, timeout: float = 30) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                at, record = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            text = str(record.get("message", ""))
            if text.startswith(prefix):
                return at, text
        raise SystemExit(f"daemon never logged {prefix!r}")


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _push_rounds(root: Path, rounds: int, interval: float, hook: bool) -> list[float]:
    """Seconds from each push's trigger (the webhook request, or the push when polled) to
    its revision being applied, under a fresh pull-mode daemon."""
    (root / "benchagents").mkdir()
    (root / "benchagents" / "__init__.py").write_text("")
    (root / "benchagents" / "echo.py").write_text(CODE)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root), *sys.path]),
        "DEVSKYY_ALLOWED_MODULES": "benchagents",
        "DEVSKYY_WEBHOOK_SECRET": SECRET.decode(),
    }
    origin, work = root / "origin.git", root / "work"
    _git("init", "-q", "--bare", "-b", "main", str(origin), cwd=root)
    _git("clone", "-q", str(origin), str(work), cwd=root)
    for key, value in (("user.email", "b@example.com"), ("user.name", "bench")):
        _git("config", key, value, cwd=work)
    _git("checkout", "-q", "-b", "main", cwd=work)
    (work / "manifests").mkdir()
    (work / "manifests" / "echo.yaml").write_text(AGENT)
    workflow = work / "manifests" / "hello.yaml"
    workflow.write_text(WORKFLOW.format(n=0))
    _git("add", "-A", cwd=work)
    _git("commit", "-qm", "start", cwd=work)
    _git("push", "-q", "origin", "main", cwd=work)
    cmd = [sys.executable, "-m", "devskyy.cli", "--state", f"sqlite:///{root / 'state.db'}"]
    cmd += ["watch", "manifests", "--git-url", str(origin), "--checkout", str(root / "co")]
    cmd += ["--interval", str(interval), "--log-format", "json", "--serve", "--port", "0"]
    proc = subprocess.Popen(
        cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    logs = Logs(proc)
    _, serving = logs.wait("serving on ")
    found = re.search(r"http://\S+", serving)
    assert found is not None
    url = found.group(0) + "/api/gitops/webhook"
    logs.wait("watching")
    seconds: list[float] = []
    trigger: Callable[[str], None] = (lambda _commit: None) if not hook else _webhook(url)
    for n in range(1, rounds + 1):
        workflow.write_text(WORKFLOW.format(n=n))
        _git("commit", "-qam", f"edit {n}", cwd=work)
        _git("push", "-q", "origin", "main", cwd=work)
        start = time.perf_counter()
        trigger(str(n))
        at, _ = logs.wait(f"applied revision {n + 1}", timeout=interval * 3 + 30)
        seconds.append(at - start)
        # The pull rewrote files in the checkout, whose events ask for one more pass; let
        # it run before the next push, or that pass (not the trigger) would find the push.
        time.sleep(SETTLE_S)
    proc.terminate()
    proc.wait(timeout=60)
    return seconds


def _webhook(url: str) -> Callable[[str], None]:
    def send(commit: str) -> None:
        body = json.dumps({"ref": "refs/heads/main", "after": commit}).encode()
        digest = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(  # a local http URL the daemon printed
            url,
            data=body,
            headers={"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Event": "push"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            if answer.status != 202:
                raise SystemExit(f"webhook answered {answer.status}")

    return send


def push_to_live(pushes: int, polls: int, poll_interval: float) -> bool:
    """The push -> live figures next to the poll's; True when the target is met."""
    with tempfile.TemporaryDirectory() as tmp:
        hooked = _push_rounds(Path(tmp), pushes, 3600.0, hook=True)
    with tempfile.TemporaryDirectory() as tmp:
        polled = _push_rounds(Path(tmp), polls, poll_interval, hook=False)
    p50, p99 = percentile(hooked, 0.5), percentile(hooked, 0.99)
    b50, b99 = percentile(polled, 0.5), percentile(polled, 0.99)
    print(f"pushes: {len(hooked)} with the webhook, {len(polled)} polled every {poll_interval:g} s")
    print(f"push -> live, webhook: p50 {p50 * 1000:.0f} ms  p99 {p99 * 1000:.0f} ms")
    print(f"push -> live, poll (baseline): p50 {b50 * 1000:.0f} ms  p99 {b99 * 1000:.0f} ms")
    met = p99 < PUSH_TARGET_P99_S
    print(f"target p99 < {PUSH_TARGET_P99_S * 1000:.0f} ms: {'met' if met else 'MISSED'}")
    return p99 < PUSH_TARGET_P99_S * SLACK


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--debounce", type=float, default=0.3)
    parser.add_argument("--pushes", type=int, default=30)
    parser.add_argument("--polls", type=int, default=5)
    parser.add_argument("--poll-interval", type=float, default=5.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "manifests").mkdir()
        (root / "benchagents").mkdir()
        (root / "benchagents" / "__init__.py").write_text("")
        (root / "benchagents" / "echo.py").write_text(CODE)
        (root / "manifests" / "echo.yaml").write_text(AGENT)
        workflow = root / "manifests" / "hello.yaml"
        workflow.write_text(WORKFLOW.format(n=0))
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(root), *sys.path]),
            "DEVSKYY_ALLOWED_MODULES": "benchagents",
        }
        cmd = [sys.executable, "-m", "devskyy.cli", "watch", "manifests", "--log-format", "json"]
        cmd += ["--debounce", str(args.debounce)]
        proc = subprocess.Popen(
            cmd, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        lines: queue.Queue[tuple[float, dict[str, object]]] = queue.Queue()

        def read() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                try:
                    lines.put((time.perf_counter(), json.loads(line)))
                except json.JSONDecodeError:
                    continue

        threading.Thread(target=read, daemon=True).start()

        def wait(prefix: str) -> float:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    at, record = lines.get(timeout=0.5)
                except queue.Empty:
                    continue
                if str(record.get("message", "")).startswith(prefix):
                    return at
            raise SystemExit(f"daemon never logged {prefix!r}")

        wait("watching")
        applied: list[float] = []
        for n in range(1, args.edits + 1):
            start = time.perf_counter()
            workflow.write_text(WORKFLOW.format(n=n))
            applied.append(wait(f"applied revision {n + 1}") - start)
        proc.terminate()
        code = proc.wait(timeout=60)

    p50, p99 = percentile(applied, 0.5), percentile(applied, 0.99)
    print(f"edits: {len(applied)}  debounce: {args.debounce * 1000:.0f} ms (the floor)")
    print(f"save -> revision live: p50 {p50 * 1000:.0f} ms  p99 {p99 * 1000:.0f} ms")
    print(f"mean {statistics.mean(applied) * 1000:.0f} ms  max {max(applied) * 1000:.0f} ms")
    print(f"over the floor: p50 +{(p50 - args.debounce) * 1000:.0f} ms")
    print(f"target p99 < {TARGET_P99_S * 1000:.0f} ms: {'met' if p99 < TARGET_P99_S else 'MISSED'}")
    print(f"daemon exit code on SIGTERM: {code}")
    saved_ok = p99 < TARGET_P99_S * SLACK and code == 0
    pushed_ok = args.pushes <= 0 or push_to_live(args.pushes, args.polls, args.poll_interval)
    return 0 if saved_ok and pushed_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
