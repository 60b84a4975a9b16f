"""The dashboard's gate dependency: what is decided in which order, and the overview's
latest revision (read alone, not from the whole history)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_fixtures import ApiWorld, browser, signed_in

from devskyy.runtime.reconciler import Reconciler

PAGES = [
    "/ui/",
    "/ui/graph",
    "/ui/runs?status=failed",
    "/ui/runs/r1",
    "/ui/runs/r1/events",
    "/ui/revisions",
    "/ui/revisions/1",
    "/ui/security",
    "/ui/audit?actor=me",
]
BAD_PARAMS = {
    "/ui/runs?page=-1": ["query", "page"],
    "/ui/runs?workflow=" + "w" * 64: ["query", "workflow"],
    "/ui/runs/bad!id": ["path", "run_id"],
    "/ui/runs/bad!id/events": ["path", "run_id"],
    "/ui/revisions/0": ["path", "number"],
    "/ui/audit?actor=" + "a" * 254: ["query", "actor"],
}


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiWorld]:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    w = ApiWorld(tmp_path, code=False, wait_for=str(tmp_path / "go"))
    yield w
    w.close()


@pytest.mark.parametrize("path", PAGES)
def test_every_page_sends_a_signed_out_browser_to_sign_in_and_back(
    world: ApiWorld, path: str
) -> None:
    answer = browser(world).get(path)
    assert answer.status_code == 303
    target = path.replace("?", "%3F").replace("=", "%3D")
    assert answer.headers["location"] == f"/ui/login?next={target}"
    assert "set-cookie" not in answer.headers  # no cookie to forget


@pytest.mark.parametrize(("path", "where"), BAD_PARAMS.items())
def test_a_bad_parameter_is_refused_before_the_gate_charges_or_audits(
    world: ApiWorld, path: str, where: list[str]
) -> None:
    assert browser(world).get(path).status_code == 422  # signed out: not sent to sign in
    world.app.state.api.settings = type(world.settings)(
        **{**world.settings.__dict__, "rate_limit": 2}
    )
    client = signed_in(world, "guest", "bad-params")  # sign-in is request 1 of 2
    for _ in range(3):
        answer = client.get(path)
        assert answer.status_code == 422
        assert [e["loc"] for e in answer.json()["detail"]] == [where]  # reported once
    denied = world.security.get_audit_log(agent_name="bad-params", limit=10)
    assert [e["event_type"] for e in denied if e["event_type"] == "permission.denied"] == []
    assert client.get("/ui/").status_code == 200  # request 2: the 422s were not counted
    assert client.get("/ui/").status_code == 429


def test_resume_checks_the_form_token_before_the_session_or_the_role(world: ApiWorld) -> None:
    refused = browser(world).post("/ui/runs/r1/resume", data={"csrf": "f" * 64})
    assert refused.status_code == 403
    assert "Bad or missing form token." in refused.text
    guest = signed_in(world, "guest", "visitor")
    assert guest.post("/ui/runs/r1/resume", data={}).status_code == 403
    denied = world.security.get_audit_log(agent_name="visitor", event_type="permission.denied")
    assert denied == []  # refused for the token: nothing was decided, nothing audited
    assert browser(world).post("/ui/logout", data={}).status_code == 403


def test_a_refused_page_is_decided_and_audited_once(world: ApiWorld) -> None:
    answer = signed_in(world, "guest", "nosy").get("/ui/security")
    assert answer.status_code == 403
    assert "Your key (role guest) may not read security: " in answer.text
    world.security.flush()
    denied = world.security.get_audit_log(agent_name="nosy", event_type="permission.denied")
    assert [(e["resource"], e["details"].get("permission")) for e in denied] == [
        ("security", "read")
    ]


def test_the_overview_shows_the_latest_revision(world: ApiWorld, tmp_path: Path) -> None:
    client = signed_in(world, "operator")
    assert 'href="/ui/revisions/1">#1</a>' in client.get("/ui/").text
    echo = tmp_path / "manifests" / "agents" / "echo.yaml"
    echo.write_text(echo.read_text().replace("timeoutSeconds: 30", "timeoutSeconds: 31"))
    Reconciler(world.system.state).apply_tree(tmp_path / "manifests")
    page = client.get("/ui/").text
    assert 'href="/ui/revisions/2">#2</a>' in page
    assert 'href="/ui/revisions/1">' not in page
    assert world.system.state.latest_revision() == world.system.state.revisions()[-1]
