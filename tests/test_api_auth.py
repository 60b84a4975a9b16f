"""Authentication, authorization, rate limits, blocking and key escalation over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_fixtures import ApiWorld

HEALTH = "/api/agents/orchestrator/health"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiWorld]:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    w = ApiWorld(tmp_path, {"rate_limit": 5}, code=False)
    yield w
    w.close()


def test_no_key_is_401_with_the_reason_code(world: ApiWorld) -> None:
    r = world.client.get(HEALTH)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["error"] == "unauthenticated"
    assert r.json()["detail"]["reason"] == "missing"


def test_bearer_and_x_api_key_both_work(world: ApiWorld) -> None:
    key = world.key("guest")
    assert world.client.get(HEALTH, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert world.client.get(HEALTH, headers={"X-API-Key": key}).status_code == 200
    assert world.client.get(HEALTH, headers={"Authorization": f"Basic {key}"}).status_code == 401


def test_bad_keys_give_reason_codes_and_never_echo_the_key(world: ApiWorld) -> None:
    new = world.security.generate_api_key("someone", "guest")
    world.security.revoke_api_key(new.key_id)
    revoked = world.client.get(HEALTH, headers={"X-API-Key": new.key})
    assert revoked.status_code == 401
    assert revoked.json()["detail"]["reason"] == "revoked"
    assert new.key not in revoked.text
    garbage = "dsk_garbage-that-is-not-a-key"
    malformed = world.client.get(HEALTH, headers={"X-API-Key": garbage})
    assert malformed.status_code == 401
    assert malformed.json()["detail"]["reason"] == "malformed"
    assert garbage not in malformed.text


def test_rbac_denial_is_403_with_the_reason(world: ApiWorld) -> None:
    r = world.client.get("/api/security/summary", headers={"X-API-Key": world.key("guest")})
    assert r.status_code == 403
    body = r.json()
    assert body["error"] == "forbidden"
    assert body["detail"]["permission"] == "read"
    assert body["detail"]["resource"] == "security"
    assert "u-guest" in body["detail"]["reason"]
    denied = world.security.get_audit_log("u-guest", "permission.denied")
    assert [e["resource"] for e in denied] == ["security"]


def test_a_key_gets_only_its_own_role(world: ApiWorld) -> None:
    world.key("admin", "alice")
    guest_key = world.key("guest", "alice")
    r = world.client.get("/api/security/summary", headers={"X-API-Key": guest_key})
    assert r.status_code == 403


def test_blocked_key_is_403_blocked(world: ApiWorld) -> None:
    r = world.client.get(HEALTH, headers={"X-API-Key": world.blocked_key()})
    assert r.status_code == 403
    assert r.json()["error"] == "blocked"
    assert r.json()["detail"]["reason"] == "blocked"


def test_rate_limit_is_429_with_retry_after_and_ratelimit_headers(world: ApiWorld) -> None:
    headers = {"X-API-Key": world.key("guest")}
    seen = [world.client.get(HEALTH, headers=headers) for _ in range(6)]
    assert [r.status_code for r in seen] == [200, 200, 200, 200, 200, 429]
    assert [r.headers["ratelimit-remaining"] for r in seen[:5]] == ["4", "3", "2", "1", "0"]
    assert seen[0].headers["ratelimit-limit"] == "5"
    last = seen[-1]
    assert last.json()["error"] == "rate_limited"
    assert 1 <= int(last.headers["retry-after"]) <= 60
    assert last.headers["ratelimit-remaining"] == "0"
    assert int(last.headers["ratelimit-reset"]) <= 60


def test_an_agent_principal_gets_its_manifest_rate_limit(world: ApiWorld) -> None:
    headers = {"X-API-Key": world.key("service", "echo")}  # echo's manifest: 3 per 60 s
    codes = [world.client.get(HEALTH, headers=headers).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_key_generation_never_grants_more_than_the_caller_holds(world: ApiWorld) -> None:
    headers = {"X-API-Key": world.key("keymaster", "km")}
    url = "/api/security/api-key/generate"
    up = world.client.post(url, json={"agent_name": "x", "role": "admin"}, headers=headers)
    assert up.status_code == 403
    assert up.json()["error"] == "forbidden"
    ok = world.client.post(url, json={"agent_name": "x", "role": "guest"}, headers=headers)
    assert ok.status_code == 201
    new = ok.json()
    assert new["role"] == "guest"
    assert new["agent_name"] == "x"
    check = world.client.get(HEALTH, headers={"X-API-Key": new["api_key"]})
    assert check.status_code == 200
    listed = world.security.list_api_keys("x")
    assert [k["role"] for k in listed] == ["guest"]


def test_revoke_over_http_stops_the_key(world: ApiWorld) -> None:
    admin = {"X-API-Key": world.key("admin")}
    victim = world.security.generate_api_key("v", "guest")
    r = world.client.delete(f"/api/security/api-key/{victim.key_id}", headers=admin)
    assert r.json() == {"key_id": victim.key_id, "revoked": True}
    after = world.client.get(HEALTH, headers={"X-API-Key": victim.key})
    assert after.json()["detail"]["reason"] == "revoked"


def test_validate_endpoint_answers_without_the_key(world: ApiWorld) -> None:
    admin = {"X-API-Key": world.key("admin")}
    other = world.security.generate_api_key("svc", "service")
    r = world.client.post(
        "/api/security/api-key/validate", json={"api_key": other.key}, headers=admin
    )
    assert r.status_code == 200
    assert r.json()["valid"] is True
    assert r.json()["principal"] == "svc"
    assert other.key not in r.text


def test_check_permission_answers_for_another_principal(world: ApiWorld) -> None:
    admin = {"X-API-Key": world.key("admin")}
    world.key("guest", "g1")
    body = {"agent_name": "g1", "resource": "keys", "permission": "write"}
    r = world.client.post("/api/security/check-permission", json=body, headers=admin)
    assert r.status_code == 200
    assert r.json()["allowed"] is False
    body["resource"], body["permission"] = "agents", "read"
    assert world.client.post("/api/security/check-permission", json=body, headers=admin).json()[
        "allowed"
    ]


def test_audit_log_filters(world: ApiWorld) -> None:
    admin = {"X-API-Key": world.key("admin")}
    world.client.get("/api/security/summary", headers={"X-API-Key": world.key("guest")})
    r = world.client.get(
        "/api/security/audit-log",
        params={"agent_name": "u-guest", "event_type": "permission.denied", "limit": 10},
        headers=admin,
    )
    assert r.status_code == 200
    assert r.json()["count"] == 1
    assert r.json()["events"][0]["actor"] == "u-guest"
    bad = world.client.get("/api/security/audit-log", params={"event_type": "nope"}, headers=admin)
    assert bad.status_code == 400
    assert "unknown event type 'nope'" in bad.json()["detail"]


def test_guessing_keys_from_one_address_blocks_guesses_not_good_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Attack (issue 11.5): junk from one address (a shared proxy or NAT) got that address
    # blocked, and the block then refused every valid key coming from it.
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    w = ApiWorld(tmp_path, {"block_sources": True}, code=False)
    try:
        good = w.key("guest")
        guesses = [f"dsk_guess{i}" for i in range(5)]
        codes = [w.client.get(HEALTH, headers={"X-API-Key": g}).status_code for g in guesses]
        assert codes == [401] * 5
        r = w.client.get(HEALTH, headers={"X-API-Key": "dsk_guess5"})
        assert r.status_code == 403
        assert r.json()["detail"] == {"reason": "blocked", "message": "too many failures"}
        r = w.client.get(HEALTH, headers={"X-API-Key": good})
        assert r.status_code == 200
        blocks = w.security.get_security_summary()["active_blocks"]
        assert [b["subject"] for b in blocks] == ["source:testclient"]
    finally:
        w.close()
