"""The push webhook end to end: a real ``devskyy watch --git-url … --serve`` process, a
local bare repository, commits pushed to it and webhooks signed here. A push is live
without waiting for the poll; a burst of pushes is one pass."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from watch_process import Daemon, message

from devskyy.cli import main

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
SECRET = b"webhook-secret-for-the-test"
AGENT = """\
apiVersion: devskyy.dev/v1
kind: Agent
metadata:
  name: a
spec:
  module: fake_agents:SucceedAgent
  priority: {priority}
"""


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, Path]:
    """A bare origin and a working clone with one commit on main."""
    origin = tmp_path / "origin.git"
    work = tmp_path / "work"
    git("init", "-q", "--bare", "-b", "main", str(origin), cwd=tmp_path)
    git("clone", "-q", str(origin), str(work), cwd=tmp_path)
    git("config", "user.email", "t@example.com", cwd=work)
    git("config", "user.name", "t", cwd=work)
    git("checkout", "-q", "-b", "main", cwd=work)
    (work / "manifests").mkdir()
    (work / "manifests" / "a.yaml").write_text(AGENT.format(priority="medium"))
    git("add", "-A", cwd=work)
    git("commit", "-qm", "one", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    return origin, work


def push(work: Path, priority: str) -> str:
    (work / "manifests" / "a.yaml").write_text(AGENT.format(priority=priority))
    git("commit", "-qam", f"priority {priority}", cwd=work)
    git("push", "-q", "origin", "main", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def signed(commit: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"ref": "refs/heads/main", "after": commit}).encode()
    digest = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Event": "push"}
    return body, headers


def test_a_signed_push_is_applied_without_the_poll_and_a_burst_is_one_pass(
    tmp_path: Path, repo: tuple[Path, Path]
) -> None:
    origin, work = repo
    secret_file = tmp_path / "webhook.secret"
    secret_file.write_bytes(SECRET + b"\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path]),
        "DEVSKYY_ALLOWED_MODULES": "fake_agents",
        "DEVSKYY_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
    }
    env.pop("DEVSKYY_WEBHOOK_SECRET", None)
    args = ["manifests", "--git-url", str(origin), "--interval", "3600", "--debounce", "0.5"]
    args += ["--serve", "--port", "0", "--webhook-secret-file", str(secret_file)]
    args += ["--checkout", str(tmp_path / "checkout")]
    d = Daemon(tmp_path, *args, env=env)
    try:
        served = d.wait_for(message("serving on "))
        found = re.search(r"http://[^ ]+", served["message"])
        assert found is not None
        base = found.group(0)
        d.wait_for(message("watching"))
        with httpx.Client(base_url=base, timeout=10) as client:
            body, headers = signed(push(work, "high"))
            answer = client.post("/api/gitops/webhook", content=body, headers=headers)
            assert answer.status_code == 202, answer.text
            d.wait_for(message("applied revision 2"), timeout=20)

            bad = client.post(
                "/api/gitops/webhook", content=body, headers={"X-Hub-Signature-256": "sha256=0"}
            )
            assert bad.status_code == 401

            synced_before = sum(1 for r in d.seen if message("git synced")(r))
            commit = push(work, "critical")
            for _ in range(5):  # a burst: the host retries, or several pushes land at once
                body, headers = signed(commit)
                assert (
                    client.post("/api/gitops/webhook", content=body, headers=headers).status_code
                    == 202
                )
            d.wait_for(message("applied revision 3"), timeout=20)
            d.drain(2.0)  # anything a second pass would log
        seen = [str(r.get("message", "")) for r in d.seen]
        applied = seen.index(next(m for m in seen if m.startswith("applied revision 3")))
        # The five webhooks became one fetch -> apply pass.
        assert seen[:applied].count("git synced") - synced_before == 1
        # After it, at most the pass that the checkout's own file events ask for (it
        # hot-reloads agent code the pull changed) and that finds nothing to apply.
        after = [m for m in seen[applied + 1 :] if m != "request"]
        assert after in ([], ["git synced", "in sync: no changes"]), after
    finally:
        assert d.stop() == 0
    history = CliRunner().invoke(
        main, ["--state", env["DEVSKYY_STATE_URL"], "history", "-o", "json"]
    )
    revisions = json.loads(history.output)
    assert [r["git_commit"] for r in revisions][-1] == commit


def test_the_secret_file_needs_pull_mode_and_serve(tmp_path: Path) -> None:
    secret = tmp_path / "s"
    secret.write_text("x")
    result = CliRunner().invoke(
        main,
        [
            "--state",
            f"sqlite:///{tmp_path / 'db'}",
            "watch",
            str(tmp_path),
            "--webhook-secret-file",
            str(secret),
        ],
    )
    assert result.exit_code == 2
    assert result.output.splitlines()[-1] == (
        "Error: --webhook-secret-file needs pull mode (--git-url) and --serve"
    )
