"""Workspace confinement, dry runs, bodies (422/413), no stack traces, request ids, logs."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_fixtures import ApiWorld

from devskyy.adapters.logs import configure
from devskyy.api.workspace import OutsideWorkspace, confine


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWorld]:
    mp = pytest.MonkeyPatch()
    mp.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    w = ApiWorld(tmp_path_factory.mktemp("edges"), {"max_body_bytes": 4096})
    w.admin = {"X-API-Key": w.key("admin")}  # type: ignore[attr-defined]
    yield w
    w.close()
    mp.undo()


def H(world: ApiWorld) -> dict[str, str]:
    return world.admin  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("../", "(through '..' or a symbolic link)"),
        ("/etc", "is outside the workspace roots"),
        ("pkg/../../", "(through '..' or a symbolic link)"),
    ],
)
def test_scanner_refuses_paths_outside_the_workspace(
    world: ApiWorld, target: str, why: str
) -> None:
    r = world.client.post(
        "/api/agents/scanner/scan", json={"target_path": target}, headers=H(world)
    )
    assert r.status_code == 403
    assert r.json()["error"] == "outside_workspace"
    assert why in r.json()["detail"]["reason"]


def test_a_symlink_out_of_the_workspace_is_refused(world: ApiWorld, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "b.py").write_text("import os\n")
    link = world.workspace / "escape"
    link.symlink_to(outside)
    try:
        r = world.client.post(
            "/api/agents/scanner/scan", json={"target_path": "escape"}, headers=H(world)
        )
        assert r.status_code == 403
        assert "(through '..' or a symbolic link)" in r.json()["detail"]["reason"]
        fix = world.client.post(
            "/api/agents/fixer/fix",
            json={"target_files": ["escape/b.py"], "dry_run": False},
            headers=H(world),
        )
        assert fix.status_code == 403
        assert (outside / "b.py").read_text() == "import os\n"
    finally:
        link.unlink()


def test_confine_unit(tmp_path: Path) -> None:
    (tmp_path / "ws" / "a").mkdir(parents=True)
    assert confine("a", [tmp_path / "ws"]) == (tmp_path / "ws" / "a").resolve()
    with pytest.raises(OutsideWorkspace, match="no workspace roots"):
        confine("a", [])


def test_fixer_dry_run_writes_nothing_and_a_real_fix_writes(world: ApiWorld) -> None:
    target = world.workspace / "pkg" / "c.py"
    source = "import sys\nimport os\nprint( os.sep )\n"
    target.write_text(source)
    scan = world.client.post(
        "/api/agents/scanner/scan",
        json={"scan_type": "quick", "target_path": "pkg"},
        headers=H(world),
    )
    assert scan.status_code == 200
    body = {"fix_type": "auto", "scan_results": scan.json(), "dry_run": True}
    dry = world.client.post("/api/agents/fixer/fix", json=body, headers=H(world))
    assert dry.status_code == 200
    assert dry.json()["dry_run"] is True
    assert "c.py" in json.dumps(dry.json()["diffs"])
    assert target.read_text() == source
    body["dry_run"] = False
    real = world.client.post("/api/agents/fixer/fix", json=body, headers=H(world))
    assert real.status_code == 200
    assert target.read_text() != source


def test_bad_bodies_are_422_with_field_errors(world: ApiWorld) -> None:
    r = world.client.post(
        "/api/agents/orchestrator/execute",
        json={"task_type": "t", "priority": "urgent"},
        headers=H(world),
    )
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_request"
    assert [e["loc"] for e in r.json()["detail"]] == [["body", "priority"]]
    typo = world.client.post("/api/agents/fixer/fix", json={"dryrun": True}, headers=H(world))
    assert typo.status_code == 422
    assert typo.json()["detail"][0]["loc"] == ["body", "dryrun"]
    assert typo.json()["detail"][0]["type"] == "extra_forbidden"


def test_unauthenticated_bad_body_is_401_not_422(world: ApiWorld) -> None:
    r = world.client.post("/api/agents/orchestrator/execute", json={"nope": 1})
    assert r.status_code == 401


def test_oversized_bodies_are_413(world: ApiWorld) -> None:
    big = {"task_type": "t", "parameters": {"blob": "x" * 5000}}
    r = world.client.post("/api/agents/orchestrator/execute", json=big, headers=H(world))
    assert r.status_code == 413
    assert r.json()["error"] == "too_large"

    def chunks() -> Iterator[bytes]:
        yield b'{"task_type": "t", "parameters": {"blob": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}}'

    streamed = world.client.post(
        "/api/agents/orchestrator/execute",
        content=chunks(),
        headers={**H(world), "content-type": "application/json"},
    )
    assert streamed.status_code == 413


def test_an_internal_error_never_shows_a_stack_trace(
    world: ApiWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> dict[str, object]:
        raise RuntimeError("secret internals /etc/shadow")

    monkeypatch.setattr(world.system.orchestrator, "get_dependency_graph", broken)
    r = world.client.get(
        "/api/agents/orchestrator/dependencies", headers={**H(world), "X-Request-ID": "req-42"}
    )
    assert r.status_code == 500
    assert r.json() == {"error": "internal", "request_id": "req-42"}
    assert "Traceback" not in r.text
    assert "secret" not in r.text


def test_request_id_is_echoed_or_generated(world: ApiWorld) -> None:
    r = world.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    generated = world.client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert len(generated.headers["x-request-id"]) == 32


def test_access_log_is_json_with_request_id_and_no_key(world: ApiWorld) -> None:
    stream = io.StringIO()
    configure("json", stream=stream)
    try:
        key = world.key("guest")
        world.client.get(
            "/api/agents/registry/info/scanner",
            headers={"Authorization": f"Bearer {key}", "X-Request-ID": "log-1"},
        )
        world.client.get("/api/agents/orchestrator/health", headers={"X-API-Key": "dsk_x"})
    finally:
        configure("text")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [x for x in lines if x["logger"] == "devskyy.api.access"]
    assert access[0]["request_id"] == "log-1"
    assert access[0]["method"] == "GET"
    assert access[0]["route"] == "/api/agents/registry/info/{agent_name}"
    assert access[0]["status"] == 403
    assert access[0]["principal"] == "u-guest"
    assert access[0]["duration_ms"] > 0
    assert access[1]["status"] == 401
    assert access[1]["principal"] is None
    assert key not in stream.getvalue()


def test_openapi_lists_every_guide_endpoint_with_typed_bodies(world: ApiWorld) -> None:
    assert world.client.get("/openapi.json").status_code == 401
    assert world.client.get("/docs").status_code == 404
    doc = world.client.get("/openapi.json", headers=H(world)).json()
    bodies = {
        ("post", "/api/agents/orchestrator/execute"): "ExecuteRequest",
        ("post", "/api/agents/registry/workflow"): "WorkflowRequest",
        ("post", "/api/security/api-key/generate"): "GenerateKeyRequest",
        ("post", "/api/security/api-key/validate"): "ValidateKeyRequest",
        ("post", "/api/security/check-permission"): "CheckPermissionRequest",
        ("post", "/api/agents/scanner/scan"): "ScanRequest",
        ("post", "/api/agents/fixer/fix"): "FixRequest",
    }
    for (method, path), model in bodies.items():
        op = doc["paths"][path][method]
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith(model)
    fix = doc["components"]["schemas"]["FixRequest"]["properties"]
    assert fix["dry_run"]["default"] is False
    # The guide's 22 paths, plus the push webhook of pull mode (issue 16).
    assert len([p for p in doc["paths"] if p.startswith("/api/")]) == 23
    assert "/api/gitops/webhook" in doc["paths"]


def test_metrics_in_prometheus_text(world: ApiWorld) -> None:
    world.client.get("/api/agents/orchestrator/health")  # an auth failure
    gate_free = world.client.post(
        "/api/agents/registry/workflow?wait=true",
        json={"workflow_name": "echo_flow"},
        headers=H(world),
    )
    assert gate_free.status_code == 200
    scan = world.client.post(
        "/api/agents/scanner/scan",
        json={"scan_type": "quick", "target_path": "pkg"},
        headers=H(world),
    )
    assert scan.status_code == 200
    r = world.client.get("/metrics", headers=H(world))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    for needle in (
        'devskyy_http_requests_total{method="POST",route="/api/agents/registry/workflow",'
        'status="200"}',
        'devskyy_auth_failures_total{reason="missing"}',
        "devskyy_rate_limited_total 0.0",
        'devskyy_agent_calls_total{agent="echo"}',
        'devskyy_agent_errors_total{agent="echo"}',
        'devskyy_agent_circuit_breaker_state{agent="echo",state="closed"} 1.0',
        'devskyy_workflow_runs{status="succeeded"}',
        'devskyy_background_runs_total{kind="workflow",status="succeeded"}',
        'devskyy_agent_call_duration_seconds_bucket{agent="echo",le="0.005"}',
        'devskyy_agent_call_duration_seconds_count{agent="scanner"}',
    ):
        assert needle in text, needle


def test_latency_histogram_counts_calls_made_outside_the_api(world: ApiWorld) -> None:
    # A call the API did not make (a CLI-started workflow in this process, the daemon,
    # execute_task) is in the histogram too: it observes the orchestrator itself.
    def echo_calls() -> float:
        text = world.client.get("/metrics", headers=H(world)).text
        prefix = 'devskyy_agent_call_duration_seconds_count{agent="echo"} '
        lines = [line for line in text.splitlines() if line.startswith(prefix)]
        return float(lines[0].removeprefix(prefix)) if lines else 0.0

    async def direct() -> None:
        await world.system.orchestrator.call_agent("echo", {})

    before = echo_calls()
    world.client.portal.call(direct)  # type: ignore[union-attr]
    assert echo_calls() == before + 1
