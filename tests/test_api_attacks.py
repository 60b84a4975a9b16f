"""The attacks of issue 11 (points 3, 7, 8, 9) and issue 15.2, each performed as a client would.

Every test here failed on the code before the fix: it names the attack in its docstring.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_fixtures import ApiWorld, apply_tree
from click.testing import CliRunner

from devskyy.adapters.clock import SystemClock
from devskyy.adapters.db import open_engine
from devskyy.adapters.state_store import SqlStateStore
from devskyy.cli import main
from devskyy.model.runs import RunRecord
from devskyy.runtime.security import SecurityManager

HEALTH = "/api/agents/orchestrator/health"
GENERATE = "/api/security/api-key/generate"

BIND_SCANNER = """\
apiVersion: devskyy.dev/v1
kind: RoleBinding
metadata: {name: scanner-service}
spec:
  role: service
  subjects: [{kind: Agent, name: scanner}]
"""


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiWorld]:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    w = ApiWorld(tmp_path, code=False)
    yield w
    w.close()


def H(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


class OtherProcess:
    """Another process on the same store (a CLI, a second server): its own engine."""

    def __init__(self, world: ApiWorld) -> None:
        self.engine = open_engine(world.url)
        self.sm = SecurityManager(self.engine, SystemClock(), SqlStateStore(self.engine).live)

    def __enter__(self) -> SecurityManager:
        return self.sm

    def __exit__(self, *_: object) -> None:
        self.sm.close()
        self.engine.dispose()


# -- 11.3: no escalation through keys --------------------------------------------------


def test_a_key_cannot_mint_with_the_rights_of_its_owners_other_keys(world: ApiWorld) -> None:
    """Attack: km holds an admin key (kept offline) and a keymaster key; with the
    keymaster key it minted an admin key, because every key of km counted."""
    world.key("admin", "km")
    keymaster = world.key("keymaster", "km")
    r = world.client.post(GENERATE, json={"agent_name": "x", "role": "admin"}, headers=H(keymaster))
    assert r.status_code == 403
    assert r.json()["detail"] == (
        "escalation refused: km does not hold admin on * (to issue a 'admin' key for x)"
    )
    ok = world.client.post(
        GENERATE, json={"agent_name": "x", "role": "guest"}, headers=H(keymaster)
    )
    assert ok.status_code == 201


def test_a_guest_key_for_a_bound_principal_carries_its_bindings(world: ApiWorld) -> None:
    """Attack: a keymaster minted a 'guest' key for scanner, whose RoleBinding gives
    service rights: the new key could execute agents and write the database."""
    tree = world.root / "manifests"
    (tree / "roles" / "scanner-binding.yaml").write_text(BIND_SCANNER)
    apply_tree(world.url, tree)  # another process applies a new revision
    keymaster = world.key("keymaster", "km")
    r = world.client.post(
        GENERATE, json={"agent_name": "scanner", "role": "guest"}, headers=H(keymaster)
    )
    assert r.status_code == 403
    assert r.json()["detail"].startswith("escalation refused: km does not hold execute on agents ")
    other = world.client.post(
        GENERATE, json={"agent_name": "nobody", "role": "guest"}, headers=H(keymaster)
    )
    assert other.status_code == 201


def test_revoking_needs_at_least_the_target_keys_rights(world: ApiWorld) -> None:
    """Attack: a keymaster (write on keys only) revoked the admins' keys."""
    admin = world.security.generate_api_key("root", "admin")
    world.key("admin", "root2")
    keymaster = world.key("keymaster", "km")
    r = world.client.delete(f"/api/security/api-key/{admin.key_id}", headers=H(keymaster))
    assert r.status_code == 403
    assert r.json()["detail"] == (
        f"escalation refused: km does not hold admin on * (held by key {admin.key_id})"
    )
    assert world.client.get(HEALTH, headers=H(admin.key)).status_code == 200


def test_the_last_admin_key_cannot_be_revoked_over_the_api(world: ApiWorld) -> None:
    """Attack: revoking the only admin key locked every admin out (answered 200)."""
    admin = world.security.generate_api_key("root", "admin")
    r = world.client.delete(f"/api/security/api-key/{admin.key_id}", headers=H(admin.key))
    assert r.status_code == 409
    assert r.json()["error"] == "conflict"
    assert r.json()["detail"] == (
        f"key {admin.key_id} is the last usable admin key: revoking it would leave no admin "
        "able to sign in (create another admin key first; on the server, "
        "`devskyy keys revoke --force` overrides)"
    )
    assert world.client.get(HEALTH, headers=H(admin.key)).status_code == 200
    world.key("admin", "second")
    r = world.client.delete(f"/api/security/api-key/{admin.key_id}", headers=H(admin.key))
    assert (r.status_code, r.json()["revoked"]) == (200, True)


def test_the_cli_needs_force_for_the_last_admin_key(world: ApiWorld) -> None:
    admin = world.security.generate_api_key("root", "admin")
    runner = CliRunner()
    for command in (["keys", "revoke", admin.key_id], ["keys", "rotate", admin.key_id]):
        refused = runner.invoke(main, ["--state", world.url, *command])
        assert refused.exit_code == 1
        assert refused.stderr.startswith(
            f"error: key {admin.key_id} is the last usable admin key: "
        )
    rotated = runner.invoke(
        main, ["--state", world.url, "keys", "rotate", admin.key_id, "--grace", "0", "--force"]
    )
    assert rotated.exit_code == 0, rotated.output
    new_key = rotated.stdout.strip()
    assert world.client.get(HEALTH, headers=H(new_key)).status_code == 200
    assert world.client.get(HEALTH, headers=H(admin.key)).status_code == 401


# -- 15.2: changes by any process take effect on the next request -----------------------


def test_a_revocation_by_another_process_is_seen_on_the_next_request(world: ApiWorld) -> None:
    """Attack: a key revoked with the CLI kept working on a running server for 5 s."""
    new = world.security.generate_api_key("svc", "service")
    assert world.client.get(HEALTH, headers=H(new.key)).status_code == 200
    with OtherProcess(world) as other:
        other.revoke_api_key(new.key_id)
    r = world.client.get(HEALTH, headers=H(new.key))
    assert (r.status_code, r.json()["detail"]["reason"]) == (401, "revoked")


def test_a_block_and_a_grant_by_another_process_are_seen_on_the_next_request(
    world: ApiWorld,
) -> None:
    new = world.security.generate_api_key("svc", "guest")
    assert world.client.get("/api/security/summary", headers=H(new.key)).status_code == 403
    with OtherProcess(world) as other:
        other.grant_resource_access("security", "svc", "read")
    assert world.client.get("/api/security/summary", headers=H(new.key)).status_code == 200
    with OtherProcess(world) as other:
        other.revoke_resource_access("security", "svc", "read")
    assert world.client.get("/api/security/summary", headers=H(new.key)).status_code == 403
    with OtherProcess(world) as other:
        for _ in range(5):  # five denials with the key block it
            other.authorize("svc", "keys", "write", presented_key_id=new.key_id)
    r = world.client.get(HEALTH, headers=H(new.key))
    assert (r.status_code, r.json()["error"]) == (403, "blocked")


def test_a_roles_revision_applied_elsewhere_is_seen_on_the_next_request(
    world: ApiWorld,
) -> None:
    new = world.security.generate_api_key("scanner", "guest")
    assert world.client.get("/api/agents/echo/history", headers=H(new.key)).status_code == 403
    tree = world.root / "manifests"
    (tree / "roles" / "scanner-binding.yaml").write_text(BIND_SCANNER)
    apply_tree(world.url, tree)
    assert world.client.get("/api/agents/echo/history", headers=H(new.key)).status_code == 200


# -- 11.7: no secret is stored from a request ----------------------------------------------


def test_a_key_in_a_request_is_never_stored_returned_or_logged(
    world: ApiWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """Attack: a key pasted into a run parameter was stored in the runs table, returned
    by GET /api/runs/ID, and kept in the database file."""
    admin = world.key("admin")
    secret = world.security.generate_api_key("victim", "service").key
    caplog.set_level(logging.INFO, logger="devskyy")
    r = world.client.post(
        "/api/agents/registry/workflow?wait=true",
        json={"workflow_name": "echo_flow", "parameters": {"word": f"token {secret}"}},
        headers=H(admin),
    )
    assert r.status_code == 200, r.text
    assert secret not in r.text
    assert r.json()["result"]["first"]["echo"] == {"word": "token [redacted]"}
    # The same key hidden behind a JSON escape, and in a query string.
    escaped = json.dumps({"word": secret}).replace("dsk_", "dsk\\u005f")
    body = '{"workflow_name": "echo_flow", "wait": true, "parameters": ' + escaped + "}"
    r2 = world.client.post(
        "/api/agents/registry/workflow",
        content=body,
        headers={**H(admin), "content-type": "application/json"},
    )
    assert r2.status_code == 200, r2.text
    assert r2.json()["record"]["params"] == {"word": "[redacted]"}
    audit = world.client.get(f"/api/security/audit-log?agent_name={secret}", headers=H(admin))
    assert audit.status_code == 200
    assert secret not in audit.text
    for run_id in (r.json()["run_id"], r2.json()["run_id"]):
        stored = world.client.get(f"/api/runs/{run_id}", headers=H(admin))
        assert secret not in stored.text
    world.security.flush()
    raw = b"".join(p.read_bytes() for p in world.root.glob("state.db*"))
    assert secret.encode() not in raw
    assert secret not in caplog.text


def test_every_answer_says_no_store(world: ApiWorld) -> None:
    admin = world.key("admin")
    r = world.client.post(GENERATE, json={"agent_name": "x", "role": "guest"}, headers=H(admin))
    assert r.status_code == 201
    assert r.headers["cache-control"] == "no-store"
    assert world.client.get(HEALTH).headers["cache-control"] == "no-store"  # 401 too


def test_validating_a_key_still_sees_the_key(world: ApiWorld) -> None:
    admin = world.key("admin")
    new = world.security.generate_api_key("svc", "guest")
    r = world.client.post(
        "/api/security/api-key/validate", json={"api_key": new.key}, headers=H(admin)
    )
    assert (r.status_code, r.json()["valid"], r.json()["key_id"]) == (200, True, new.key_id)
    assert new.key not in r.text


# -- 11.9: the API fails cleanly ------------------------------------------------------


def test_malformed_json_is_422_as_documented(world: ApiWorld) -> None:
    r = world.client.post(
        "/api/agents/registry/workflow",
        content=b"{not json",
        headers={**H(world.key("admin")), "content-type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_request"
    assert r.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize("depth", [101, 900, 5000])
@pytest.mark.parametrize("wait", ["true", "false"])
def test_json_nested_past_the_limit_is_422_and_nothing_is_stored(
    world: ApiWorld, depth: int, wait: str
) -> None:
    """Attack: parameters nested ~900 levels were accepted (202), stored, and reading the
    run back answered 500; deeper ones answered 400 'error parsing the body'."""
    admin = world.key("admin")
    deep = "[" * depth + '"x"' + "]" * depth
    body = '{"workflow_name": "echo_flow", "parameters": {"word": ' + deep + "}}"
    r = world.client.post(
        f"/api/agents/registry/workflow?wait={wait}",
        content=body,
        headers={**H(admin), "content-type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["detail"] == [
        {"loc": ["body"], "msg": "JSON nested deeper than 100 levels", "type": "json_too_deep"}
    ]
    assert world.system.workflows is not None
    assert world.system.workflows.store.list_runs() == []


def test_unknown_methods_are_counted_as_other(world: ApiWorld) -> None:
    """Attack: every made-up method added a Prometheus series (unbounded labels)."""
    admin = world.key("admin")
    for n in range(3):
        world.client.request(f"BREW{n}", "/api/agents/registry/list", headers=H(admin))
    metrics = world.client.get("/metrics", headers=H(admin)).text
    assert "BREW" not in metrics
    assert (
        'devskyy_http_requests_total{method="other",route="/api/agents/registry/list",'
        'status="405"} 3.0' in metrics
    )


def test_an_internal_error_keeps_its_traceback_in_the_log_only(
    world: ApiWorld, caplog: pytest.LogCaptureFixture
) -> None:
    def boom() -> None:
        raise RuntimeError("kaboom at /srv/secret/place")

    world.app.add_api_route("/boom", boom)
    r = world.client.get("/boom", headers={"X-Request-ID": "req-42"})
    assert r.status_code == 500
    assert r.json() == {"error": "internal", "request_id": "req-42"}
    records = [x for x in caplog.records if x.name == "devskyy.api"]
    fields = records[-1].fields  # type: ignore[attr-defined]
    assert fields["request_id"] == "req-42"
    assert fields["error"] == "RuntimeError"
    assert 'raise RuntimeError("kaboom at /srv/secret/place")' in fields["traceback"]
    assert "RuntimeError: kaboom at /srv/secret/place" in fields["traceback"]


def test_errors_never_print_the_workspace_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack: an agent's refusal quoted the server's absolute workspace folder."""
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    w = ApiWorld(tmp_path / "code")
    try:
        root = str(w.workspace.resolve())
        r = w.client.post(
            "/api/agents/scanner/scan", json={"target_path": "pkg/a.py"}, headers=H(w.key("admin"))
        )
        assert r.status_code == 400
        assert r.json()["detail"] == {"reason": "target_path 'pkg/a.py' is not a folder"}
        assert root not in r.text
    finally:
        w.close()


# -- 11.5: junk cannot flood the audit log ------------------------------------------------


@pytest.mark.slow
def test_ten_thousand_junk_requests_add_a_bounded_number_of_audit_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Attack: every failed sign-in was its own audit row: 10,000 junk requests added
    10,000 rows. (Counting failures per presented string, as without source blocking,
    never blocks the flood: every request reaches the audit log.)"""
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    w = ApiWorld(tmp_path, {"block_sources": False}, code=False)
    try:
        w.security.flush()
        before = w.security.store.audit_count()
        statuses = {
            w.client.get(HEALTH, headers=H(f"junk-{n}" if n % 2 else f"dsk_{n:052d}")).status_code
            for n in range(10_000)
        }
        assert statuses <= {401, 403}
        w.security.flush()
        added = w.security.store.audit_count() - before
        assert added <= 10  # one event per source, reason and minute (+ the block itself)
        failed = w.security.get_audit_log(event_type="key.failed", limit=1000)
        assert sum(e["details"].get("count", 1) for e in failed) == 10_000
        assert {e["details"]["subject"] for e in failed} == {"source:testclient"}
    finally:
        w.close()


# -- 11.8: read rights are consistent ---------------------------------------------------


def test_aggregated_views_show_only_agents_readable_one_by_one(world: ApiWorld) -> None:
    """Attack: a guest is 403 on agents/echo/health but read echo's health, figures and
    dependencies through the aggregated endpoints."""
    guest, admin = world.key("guest"), world.key("admin")
    assert world.client.get("/api/agents/echo/health", headers=H(guest)).status_code == 403
    views = {
        "/api/agents/registry/health": lambda body: body["agents"],
        "/api/agents/orchestrator/health": lambda body: body["agents"],
        "/api/agents/orchestrator/metrics": lambda body: body,
        "/api/agents/orchestrator/dependencies": lambda body: body["nodes"],
    }
    for path, agents in views.items():
        seen = world.client.get(path, headers=H(guest))
        assert seen.status_code == 200, path
        assert list(agents(seen.json())) == [], path
        assert "echo" not in seen.text, path
        full = world.client.get(path, headers=H(admin))
        assert list(agents(full.json())) == ["echo"], path
    health = world.client.get("/api/agents/registry/health", headers=H(guest)).json()
    assert (health["total_agents"], health["healthy_agents"]) == (0, 0)
    # A grant on one agent shows that agent, and only it, everywhere.
    world.security.grant_resource_access("agents/echo", "u-guest", "read")
    assert world.client.get("/api/agents/echo/health", headers=H(guest)).status_code == 200
    for path, agents in views.items():
        seen = world.client.get(path, headers=H(guest))
        assert list(agents(seen.json())) == ["echo"], path


def test_a_stored_run_nested_past_the_limit_reads_as_422(world: ApiWorld) -> None:
    """Attack: a run whose parameters nest ~900 levels (stored by another way in than the
    API, which now refuses such a body) answered 500 when read back."""
    deep: object = "x"
    for _ in range(900):
        deep = [deep]
    engine = world.system.workflows
    assert engine is not None
    engine.store.create(RunRecord("deep900", "echo_flow", params={"word": deep}))
    r = world.client.get("/api/runs/deep900", headers=H(world.key("admin")))
    assert r.status_code == 422
    assert r.json()["detail"] == [
        {
            "loc": ["run", "deep900"],
            "msg": "stored run: JSON nested deeper than 100 levels",
            "type": "json_too_deep",
        }
    ]
