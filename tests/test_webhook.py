"""``POST /api/gitops/webhook`` over HTTP, with real signatures computed here: each git
host's scheme, 401 audited, 429, the 409s without a pull daemon, ignored events, and the
raw body reaching the HMAC untouched. The real daemon end to end is in
``test_webhook_daemon.py``."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from devskyy.api import ApiSettings, create_app
from devskyy.api.routers.gitops import PushWebhook
from devskyy.runtime.system import System, open_system

SECRET = b"s3cret-shared-with-the-git-host"
URL = "/api/gitops/webhook"
PUSH = {"ref": "refs/heads/main", "after": "0" * 40, "repository": {"name": "manifests"}}


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def github(body: bytes, secret: bytes = SECRET, event: str = "push") -> dict[str, str]:
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Event": event,
        "Content-Type": "application/json",
    }


class World:
    def __init__(self, tmp: Path, *, hook: str = "secret", rate_limit: int | None = None) -> None:
        self.pushes = 0
        self.system: System = asyncio.run(open_system(f"sqlite:///{tmp / 's.db'}"))
        webhook = None
        if hook != "none":
            webhook = PushWebhook(SECRET if hook == "secret" else None, "main", self._push)
        settings = ApiSettings(workspace_roots=(tmp,), rate_limit=rate_limit)
        self.client = TestClient(create_app(self.system, settings, webhook=webhook))

    def _push(self) -> None:
        self.pushes += 1

    def audit(self) -> list[dict[str, Any]]:
        security = self.system.security_manager()
        security.flush()
        rows = security.get_audit_log(limit=100)
        return [r for r in rows if r["event_type"] == "webhook.rejected"]

    def close(self) -> None:
        self.client.close()
        asyncio.run(self.system.close())


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


def test_a_signed_github_push_is_accepted_at_once_and_hints_the_daemon(world: World) -> None:
    body = body_of(PUSH)
    answer = world.client.post(URL, content=body, headers=github(body))
    assert answer.status_code == 202
    assert answer.json() == {
        "status": "accepted",
        "host": "github",
        "event": "push",
        "ref": "refs/heads/main",
    }
    assert world.pushes == 1


@pytest.mark.parametrize("host", ["gitea", "forgejo"])
def test_gitea_and_forgejo_sign_with_the_same_hmac(world: World, host: str) -> None:
    body = body_of(PUSH)
    digest = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    name = host.capitalize()
    headers = {f"X-{name}-Signature": digest, f"X-{name}-Event": "push"}
    answer = world.client.post(URL, content=body, headers=headers)
    assert answer.status_code == 202, answer.text
    assert answer.json()["host"] == host
    bad = world.client.post(URL, content=body + b" ", headers=headers)
    assert bad.status_code == 401
    assert world.pushes == 1


def test_gitlab_sends_the_secret_itself(world: World) -> None:
    body = body_of(PUSH)
    headers = {"X-Gitlab-Token": SECRET.decode(), "X-Gitlab-Event": "Push Hook"}
    assert world.client.post(URL, content=body, headers=headers).status_code == 202
    headers["X-Gitlab-Token"] = "guess"
    answer = world.client.post(URL, content=body, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["detail"]["reason"] == "bad_signature"
    assert world.pushes == 1


def test_bad_and_missing_signatures_are_401_audited_and_change_nothing(world: World) -> None:
    body = body_of(PUSH)
    wrong = world.client.post(URL, content=body, headers=github(body, b"not-the-secret"))
    tampered = world.client.post(URL, content=body_of({**PUSH, "x": 1}), headers=github(body))
    missing = world.client.post(URL, content=body, headers={"X-GitHub-Event": "push"})
    assert [r.status_code for r in (wrong, tampered, missing)] == [401, 401, 401]
    assert [r.json()["detail"]["reason"] for r in (wrong, tampered, missing)] == [
        "bad_signature",
        "bad_signature",
        "missing_signature",
    ]
    assert world.pushes == 0
    events = world.audit()
    assert [(e["outcome"], e["details"]["reason"], e["details"]["host"]) for e in events] == [
        ("denied", "bad_signature", "github"),
        ("denied", "bad_signature", "github"),
        ("denied", "missing_signature", None),
    ]
    assert {e["resource"] for e in events} == {URL}
    text = json.dumps(events)
    assert SECRET.decode() not in text
    assert "sha256=" not in text


def test_a_ping_another_branch_or_event_is_acknowledged_and_ignored(world: World) -> None:
    ping = body_of({"zen": "Keep it logically awesome.", "hook_id": 1})
    answer = world.client.post(URL, content=ping, headers=github(ping, event="ping"))
    assert answer.status_code == 200
    assert answer.json()["reason"] == "not a push event (ping)"
    other = body_of({**PUSH, "ref": "refs/heads/feature"})
    answer = world.client.post(URL, content=other, headers=github(other))
    assert answer.status_code == 200
    assert answer.json()["reason"] == (
        "a push to refs/heads/feature; this daemon follows refs/heads/main"
    )
    assert world.pushes == 0


def test_the_body_reaches_the_signature_check_byte_for_byte(world: World) -> None:
    # The API redacts key-like strings in JSON bodies; a commit message may hold one, and
    # the HMAC covers the raw bytes.
    body = body_of({**PUSH, "head_commit": {"message": "rotate dsk_abc123_" + "a" * 39}})
    answer = world.client.post(URL, content=body, headers=github(body))
    assert answer.status_code == 202, answer.text


def test_the_webhook_is_rate_limited_per_client_address(tmp_path: Path) -> None:
    w = World(tmp_path, rate_limit=3)
    try:
        body = body_of(PUSH)
        codes = [
            w.client.post(URL, content=body, headers=github(body)).status_code for _ in range(4)
        ]
        assert codes == [202, 202, 202, 429]
        last = w.client.post(URL, content=body, headers=github(body))
        assert last.status_code == 429
        assert int(last.headers["Retry-After"]) >= 1
        assert w.pushes == 3
    finally:
        w.close()


def test_without_a_pull_daemon_or_a_secret_it_answers_409_with_the_reason(tmp_path: Path) -> None:
    body = body_of(PUSH)
    (tmp_path / "a").mkdir()
    plain = World(tmp_path / "a", hook="none")
    try:
        answer = plain.client.post(URL, content=body, headers=github(body))
        assert answer.status_code == 409
        assert answer.json()["error"] == "no_pull_daemon"
        assert "devskyy watch --git-url URL --serve" in answer.json()["detail"]["message"]
    finally:
        plain.close()
    (tmp_path / "b").mkdir()
    unset = World(tmp_path / "b", hook="nosecret")
    try:
        answer = unset.client.post(URL, content=body, headers=github(body))
        assert answer.status_code == 409
        assert answer.json()["detail"] == {
            "reason": "no_webhook_secret",
            "message": "the daemon has no webhook secret: set DEVSKYY_WEBHOOK_SECRET "
            "or --webhook-secret-file",
        }
        assert unset.pushes == 0
    finally:
        unset.close()


def test_the_openapi_document_says_the_webhook_is_signed_not_keyed(world: World) -> None:
    operation = world.client.app.openapi()["paths"][URL]["post"]  # type: ignore[attr-defined]
    assert operation["security"] == [{"webhookSignature": []}]
    assert set(operation["responses"]) >= {"200", "202", "401", "409", "429"}
