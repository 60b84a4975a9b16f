"""Every endpoint x every role (and no key, bad key, blocked key) -> the committed status.

``tests/data/api_matrix.csv`` is the contract; this test runs all of it through
FastAPI's TestClient against real agents in a tiny temp workspace. It also checks that
the matrix names every route the app serves, and each route of the app is in the
permission table.
"""

from __future__ import annotations

import csv
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_fixtures import ROLES, ApiWorld

from devskyy.api.permissions import PUBLIC, SIGNED, TABLE

MATRIX = Path(__file__).parent / "data" / "api_matrix.csv"
COLUMNS = (*ROLES, "no_key", "bad_key", "blocked_key")


def rows() -> list[dict[str, str]]:
    with MATRIX.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWorld]:
    mp = pytest.MonkeyPatch()
    mp.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    w = ApiWorld(tmp_path_factory.mktemp("matrix"))
    admin = {"Authorization": f"Bearer {w.key('admin', 'setup')}"}
    done = w.client.post(
        "/api/agents/registry/workflow",
        json={"workflow_name": "echo_flow", "wait": True},
        headers=admin,
    )
    assert done.status_code == 200, done.text
    w.run_id = done.json()["run_id"]  # type: ignore[attr-defined]
    yield w
    w.close()
    mp.undo()


def request_for(world: ApiWorld, method: str, path: str) -> tuple[str, dict[str, Any]]:
    """A cheap concrete request for a route template."""
    values = {
        "agent_name": "scanner",
        "run_id": world.run_id,  # type: ignore[attr-defined]
        "key_id": world.security.generate_api_key("victim", "guest").key_id,
    }
    if path.endswith("reload/{agent_name}"):
        values["agent_name"] = "echo"
    url = path.format(**values)
    bodies: dict[str, dict[str, Any]] = {
        "/api/agents/orchestrator/execute": {"task_type": "t", "required_capabilities": ["echo"]},
        "/api/agents/registry/workflow": {"workflow_name": "echo_flow"},
        "/api/security/api-key/generate": {"agent_name": "new-one", "role": "guest"},
        "/api/security/api-key/validate": {"api_key": "dsk_not_a_key"},
        "/api/security/check-permission": {
            "agent_name": "u-guest",
            "resource": "agents",
            "permission": "read",
        },
        "/api/agents/scanner/scan": {"scan_type": "quick", "target_path": "pkg"},
        "/api/agents/fixer/fix": {"target_files": ["pkg/a.py"], "dry_run": True},
    }
    return url, {"json": bodies[path]} if path in bodies else {}


def headers_for(world: ApiWorld, column: str) -> dict[str, str]:
    if column == "no_key":
        return {}
    if column == "bad_key":
        # A fresh well-formed key nobody issued (each row a new one: failures by one
        # presented string would block that string).
        return {"X-API-Key": f"dsk_{secrets.token_hex(6)}_{'a' * 39}"}
    if column == "blocked_key":
        return {"X-API-Key": world.blocked_key()}
    return {"Authorization": f"Bearer {world.key(column)}"}


def test_matrix_covers_every_route(world: ApiWorld) -> None:
    paths = world.app.openapi()["paths"]
    served = {(m.upper(), path) for path, ops in paths.items() for m in ops}
    in_matrix = {(r["method"], r["path"]) for r in rows()}
    assert served == in_matrix
    assert served - PUBLIC - set(SIGNED) == set(TABLE)


@pytest.mark.parametrize("row", rows(), ids=lambda r: f"{r['method']} {r['path']}")
def test_matrix_row(world: ApiWorld, row: dict[str, str]) -> None:
    got = {}
    for column in COLUMNS:
        url, extra = request_for(world, row["method"], row["path"])
        response = world.client.request(
            row["method"], url, headers=headers_for(world, column), **extra
        )
        got[column] = str(response.status_code)
        if response.status_code >= 400:
            body = response.json()
            assert "error" in body, body
            assert body["request_id"] == response.headers["x-request-id"]
    assert got == {c: row[c] for c in COLUMNS}
