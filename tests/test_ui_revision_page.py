"""The dashboard's revision page reads the one revision it shows, not the whole history."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_fixtures import ApiWorld, signed_in

from devskyy.model.plan import Revision
from devskyy.runtime.reconciler import Reconciler


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiWorld]:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    w = ApiWorld(tmp_path, code=False, wait_for=str(tmp_path / "go"))
    # Revision 2 prunes the echo agent, revision 3 rolls back to revision 1.
    reconciler = Reconciler(w.system.state)
    (w.root / "manifests" / "agents" / "echo.yaml").unlink()
    reconciler.apply_tree(w.root / "manifests", prune=True)
    reconciler.rollback(1)
    yield w
    w.close()


def test_the_page_shows_one_revision_read_alone(
    world: ApiWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = world.system.state
    revisions = state.revisions()
    assert [(r.number, r.rollback_of) for r in revisions] == [(1, None), (2, None), (3, 1)]

    def every_revision() -> list[Revision]:
        raise AssertionError("the revision page read every revision")

    monkeypatch.setattr(state, "revisions", every_revision)
    client = signed_in(world, "operator")
    for revision in revisions:
        page = client.get(f"/ui/revisions/{revision.number}")
        assert page.status_code == 200
        text = page.text
        assert f"<h1>Revision #{revision.number}</h1>" in text
        applied = revision.created_at.strftime("%Y-%m-%d %H:%M:%SZ")
        assert f"<dt>Applied</dt><dd>{applied}</dd>" in text
        # The tree is on the server, outside the workspace: shown as answers show paths.
        assert revision.source == str(world.root / "manifests")
        assert "<dt>Source</dt><dd><code>&lt;server path&gt;</code></dd>" in text
        assert str(world.root) not in text
        assert ("<dt>Rollback of</dt><dd>#1</dd>" in text) is (revision.number == 3)
    second = client.get("/ui/revisions/2").text
    deleted = (
        '<pre class="diff"><span class="a-delete">- delete Agent/echo</span>\n'
        '<span class="a-delete">- delete Workflow/echo_flow</span>\n</pre>'
    )
    assert deleted in second
    assert "Compared with revision #1." in second
    third = client.get("/ui/revisions/3").text
    assert deleted.replace("delete", "create").replace("- ", "+ ") in third


def test_a_missing_revision_is_a_404(world: ApiWorld) -> None:
    client = signed_in(world, "operator")
    for number in (4, 999):
        page = client.get(f"/ui/revisions/{number}")
        assert page.status_code == 404
        assert "No such revision" in page.text
        assert f"Revision {number} does not exist." in page.text


def test_no_page_about_revisions_names_a_server_path(world: ApiWorld) -> None:
    client = signed_in(world, "operator")
    for url in ("/ui/", "/ui/revisions", "/ui/revisions/1", "/ui/revisions/3"):
        page = client.get(url)
        assert page.status_code == 200, url
        assert str(world.root) not in page.text, url
    assert "&lt;server path&gt;" in client.get("/ui/revisions").text
