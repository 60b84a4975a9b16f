"""The OpenAPI document describes the API as it behaves (issue 11.9).

Before: no security scheme at all, no ``security`` on any operation, and statuses the
handlers answer (400, 409, 502, 503) missing from the document.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_fixtures import ApiWorld
from openapi_spec_validator import validate

from devskyy.api.openapi import COMMON, EXTRA, SIGNED_ERRORS
from devskyy.api.permissions import PUBLIC, SIGNED, TABLE

MATRIX = Path(__file__).parent / "data" / "api_matrix.csv"
METHODS = ("get", "post", "put", "delete", "patch")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiWorld]:
    mp = pytest.MonkeyPatch()
    mp.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    w = ApiWorld(tmp_path_factory.mktemp("openapi"), code=False)
    yield w
    w.close()
    mp.undo()


@pytest.fixture(scope="module")
def doc(world: ApiWorld) -> dict[str, Any]:
    r = world.client.get("/openapi.json", headers={"X-API-Key": world.key("guest")})
    assert r.status_code == 200
    body: dict[str, Any] = r.json()
    return body


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def test_the_document_is_valid_openapi(doc: dict[str, Any]) -> None:
    validate(doc)


def test_both_key_schemes_and_security_on_every_operation(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"]["type"] == "http"
    assert schemes["bearer"]["scheme"] == "bearer"
    assert (schemes["apiKey"]["type"], schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == (
        "apiKey",
        "header",
        "X-API-Key",
    )
    seen = set()
    for method, path, operation in operations(doc):
        seen.add((method, path))
        expected = [] if (method, path) in PUBLIC else [{"bearer": []}, {"apiKey": []}]
        if (method, path) in SIGNED:  # the push webhook: a signature, no key
            expected = [{"webhookSignature": []}]
        assert operation["security"] == expected, (method, path)
    assert set(TABLE) | PUBLIC | set(SIGNED) <= seen


def test_every_error_status_has_the_error_body(doc: dict[str, Any]) -> None:
    ref = {"$ref": "#/components/schemas/ErrorBody"}
    for method, path, operation in operations(doc):
        if (method, path) in PUBLIC:
            assert set(operation["responses"]) == {"200"}
            continue
        expected = {str(c) for c in {**COMMON, **EXTRA.get((method, path), {})}}
        if (method, path) in SIGNED:
            expected = {str(c) for c in SIGNED_ERRORS}
        errors = {c for c in operation["responses"] if c[0] in "45"}
        assert errors == expected, (method, path)
        for code in errors:
            schema = operation["responses"][code]["content"]["application/json"]["schema"]
            assert schema == ref, (method, path, code)
    declared = {
        code
        for _, _, operation in operations(doc)
        for code in operation["responses"]
        if code[0] in "45"
    }
    assert declared >= {"400", "401", "403", "404", "409", "413", "422", "429", "502", "503"}


def test_every_status_the_role_matrix_observes_is_declared(doc: dict[str, Any]) -> None:
    with MATRIX.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        responses = doc["paths"][row["path"]][row["method"].lower()]["responses"]
        for column, status in row.items():
            if column in ("method", "path"):
                continue
            assert status in responses, (row["method"], row["path"], column, status)


@pytest.mark.parametrize(
    ("method", "url", "body", "status"),
    [
        ("GET", "/api/runs/nope", None, 404),
        ("GET", "/api/security/audit-log?event_type=nope", None, 400),
        ("POST", "/api/runs/nope/resume", None, 404),
        ("POST", "/api/security/api-key/generate", {"agent_name": "x", "role": "nope"}, 404),
        ("POST", "/api/agents/registry/workflow", {"workflow_name": "nope"}, 404),
    ],
)
def test_statuses_answered_are_declared(
    world: ApiWorld, doc: dict[str, Any], method: str, url: str, body: Any, status: int
) -> None:
    admin = {"X-API-Key": world.key("admin")}
    r = world.client.request(method, url, json=body, headers=admin)
    assert r.status_code == status, r.text
    route = next(
        path for m, path in TABLE if m == method and _matches(path, url.split("?", maxsplit=1)[0])
    )
    assert str(status) in doc["paths"][route][method.lower()]["responses"]


def _matches(template: str, url: str) -> bool:
    parts, got = template.split("/"), url.split("/")
    return len(parts) == len(got) and all(
        p == g or (p.startswith("{") and p.endswith("}")) for p, g in zip(parts, got, strict=True)
    )
