"""``devskyy serve`` as a real uvicorn process: who the client is, and checkpoints in its log.

Attack (issue 11.4): uvicorn trusts ``X-Forwarded-For`` from 127.0.0.1 by default, so a
local client chose its source address per request: its junk never added up to a source
block. Without ``--forwarded-allow-ips`` the header is ignored now; with it (behind a real
proxy) each forwarded client counts on its own.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from api_fixtures import (
    answers,
    free_port,
    make_workspace,
    stop_process,
    subprocess_env,
    wait_until,
    write_tree,
)
from click.testing import CliRunner

from devskyy.cli import main
from devskyy.core.audit import parse_checkpoints

HEALTH = "/api/agents/orchestrator/health"


def _serve(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], str, str]:
    workspace = make_workspace(tmp_path)
    tree = tmp_path / "manifests"
    if not tree.exists():
        tree = write_tree(tmp_path, workspace, code=False)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devskyy.cli",
            "--state",
            state,
            "serve",
            "--port",
            str(port),
            "--manifests",
            str(tree),
            "--workspace",
            str(workspace),
            *extra,
        ],
        env=subprocess_env(),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: proc.poll() is not None or answers(f"{base}/healthz"), "the server")
    assert proc.poll() is None, proc.communicate(timeout=10)
    return proc, base, state


def _stop(proc: subprocess.Popen[str]) -> str:
    err = stop_process(proc, signal.SIGTERM, timeout=30)
    assert proc.returncode == 0, err
    return err


def _junk_codes(base: str) -> list[int]:
    with httpx.Client(base_url=base, timeout=30.0) as http:
        return [
            http.get(
                HEALTH, headers={"X-API-Key": f"junk-{n}", "X-Forwarded-For": f"203.0.113.{n}"}
            ).status_code
            for n in range(7)
        ]


@pytest.mark.slow
def test_a_client_cannot_choose_its_source_address(tmp_path: Path) -> None:
    proc, base, _ = _serve(tmp_path)
    try:
        # All seven come from 127.0.0.1 whatever the header says: the fifth failure
        # blocks the address, the next attempts are refused as blocked.
        assert _junk_codes(base) == [401, 401, 401, 401, 401, 403, 403]
    finally:
        _stop(proc)


@pytest.mark.slow
def test_behind_a_trusted_proxy_forwarded_clients_count_apart(tmp_path: Path) -> None:
    proc, base, _ = _serve(tmp_path, "--forwarded-allow-ips", "127.0.0.1")
    try:
        assert _junk_codes(base) == [401] * 7
    finally:
        _stop(proc)


@pytest.mark.slow
def test_serve_logs_an_audit_checkpoint_that_verify_checks(tmp_path: Path) -> None:
    proc, _base, state = _serve(tmp_path, "--audit-checkpoint-interval", "300")
    err = _stop(proc)
    log = tmp_path / "serve.log"
    log.write_text(err)
    marks = parse_checkpoints(err, str(log))
    assert len(marks) == 1  # at start (the next one is 300 s away)
    assert marks[0].seq >= 1  # the apply of --manifests is in the chain
    runner = CliRunner()
    ok = runner.invoke(main, ["--state", state, "audit", "--verify", "--checkpoint", str(log)])
    assert ok.exit_code == 0, ok.output


@pytest.mark.slow
def test_a_key_revoked_through_one_server_is_refused_by_the_other_at_once(
    tmp_path: Path,
) -> None:
    """Issue 15.2: two servers on one store; a revocation through one took up to 5 s to
    reach the other (its key cache), which kept serving the revoked key."""
    first, base_a, state = _serve(tmp_path)
    second, base_b, _ = _serve(tmp_path)
    try:
        runner = CliRunner()
        keys = [
            runner.invoke(main, ["--state", state, "keys", "create", name, "--role", role])
            for name, role in (("root", "admin"), ("svc", "service"))
        ]
        admin, svc = (k.stdout.strip() for k in keys)
        svc_id = svc.split("_")[1]
        with httpx.Client(timeout=30.0) as http:
            for base in (base_a, base_b):
                assert http.get(base + HEALTH, headers={"X-API-Key": svc}).status_code == 200
            revoked = http.delete(
                f"{base_b}/api/security/api-key/{svc_id}", headers={"X-API-Key": admin}
            )
            assert revoked.status_code == 200, revoked.text
            r = http.get(base_a + HEALTH, headers={"X-API-Key": svc})
            assert (r.status_code, r.json()["detail"]["reason"]) == (401, "revoked")
    finally:
        _stop(second)
        _stop(first)


@pytest.mark.slow
def test_watch_logs_audit_checkpoints_every_interval(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path)
    tree = write_tree(tmp_path, workspace, code=False)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devskyy.cli",
            "--state",
            state,
            "watch",
            str(tree),
            "--audit-checkpoint-interval",
            "1",
            "--log-format",
            "json",
        ],
        env=subprocess_env(),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)

    def seqs() -> list[int]:
        marked = [line for line in list(lines) if "audit checkpoint" in line]
        return [m.seq for m in parse_checkpoints("".join(marked), "log")] if marked else []

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        # One at start (the chain may still be empty), then one a second, until the first
        # pass's apply is in the chain.
        wait_until(
            lambda: proc.poll() is not None or (len(seqs()) >= 2 and seqs()[-1] >= 1),
            "checkpoints in the watch log, the apply among them",
        )
        assert proc.poll() is None, "".join(lines)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=10)
        if proc.stderr is not None:
            proc.stderr.close()
    text = "".join(lines)
    marks = parse_checkpoints(text, "watch.log")
    assert len(marks) >= 2
    assert [m.seq for m in marks] == sorted(m.seq for m in marks)
    assert marks[-1].seq >= 1
    log = tmp_path / "watch.log"
    log.write_text(text)
    ok = CliRunner().invoke(main, ["--state", state, "audit", "--verify", "--checkpoint", str(log)])
    assert ok.exit_code == 0, ok.output
