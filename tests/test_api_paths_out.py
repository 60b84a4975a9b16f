"""Answers never tell a client where on the server the workspace or the state folder is.

The attack: a client allowed to run ``scan_and_fix`` read ``target_path``
(``/srv/…/workspace/pkg``) and ``backup_path`` (``/srv/…/.devskyy/backups/…``) in the
step outputs of ``GET /api/runs/{id}``, the task result, the agent history and the
dashboard's run page. Answers now show a workspace path relative to its root (the form a
request takes) and any other server path as ``<server path>`` (``api/paths_out.py``);
the run store keeps what the agents returned, so ``devskyy restore`` still finds the
backup. The real agents run (scanner, fixer, security, verifier), over FastAPI's
``TestClient``.
"""

from __future__ import annotations

import html
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_fixtures import VERIFIER, ApiWorld, scan_and_fix_code, signed_in

from devskyy.adapters.run_store import SqlRunStore
from devskyy.adapters.task_runs import SqlTaskRuns, TaskRun
from devskyy.api.paths_out import MAX_SHOWN_DEPTH, OUTSIDE, ShownPaths


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiWorld]:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    w = ApiWorld(tmp_path, more_code=VERIFIER + scan_and_fix_code())
    yield w
    w.close()


def H(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def _server_paths(world: ApiWorld) -> set[str]:
    """The folders no answer may name: the state folder (which holds the workspace)."""
    return {str(world.root), str(world.root.resolve())}


def _leaks(world: ApiWorld, text: str) -> list[str]:
    return [p for p in _server_paths(world) if p in text]


def _scan_and_fix(world: ApiWorld, **params: Any) -> Any:
    answer = world.client.post(
        "/api/agents/registry/workflow?wait=true",
        headers=H(world.key("operator")),
        json={"workflow_name": "scan_and_fix", "parameters": {"target_path": "pkg", **params}},
    )
    assert answer.status_code == 200, answer.text
    return answer


# -- over HTTP ----------------------------------------------------------------------------


def test_scan_and_fix_answers_show_workspace_paths_relative_and_hide_the_state_folder(
    world: ApiWorld,
) -> None:
    answer = _scan_and_fix(world)
    assert answer.json()["status"] == "succeeded"
    assert _leaks(world, answer.text) == []
    run_id = answer.json()["run_id"]
    read = world.client.get(f"/api/runs/{run_id}", headers=H(world.key("analyst")))
    assert read.status_code == 200
    assert _leaks(world, read.text) == []
    for view in (answer.json(), read.json()):
        result, record = view["result"], view["record"]
        assert result["security"]["target_path"] == "pkg"
        assert result["scan"]["target_path"] == "pkg"
        assert result["rescan"]["target_path"] == "pkg"
        assert [i["file"] for i in result["scan"]["issues"]][:1] == ["a.py"]
        fix = result["fix"]
        assert (fix["target_path"], fix["changed_files"]) == ("pkg", ["a.py"])
        assert fix["backup_path"] == OUTSIDE
        assert fix["headline"] == "applied 2 fixes in 1 files, 0 left; backup <server path>"
        assert record["params"]["target_path"] == "pkg"
        assert record["steps"]["fix"]["output"] == fix
    # The store keeps what the fixer returned: the CLI and devskyy restore need it.
    stored = SqlRunStore(world.system.engine).get(run_id)
    fixed = stored.step("fix").output
    assert fixed is not None
    assert fixed["target_path"] == str(world.workspace.resolve() / "pkg")
    backup = Path(fixed["backup_path"])
    assert backup.parent == world.root.resolve() / "backups"
    assert (backup / "manifest.json").is_file()


def test_a_relative_path_shown_is_accepted_back_as_input(world: ApiWorld) -> None:
    admin = H(world.key("admin"))
    first = world.client.post(
        "/api/agents/scanner/scan", json={"target_path": "pkg"}, headers=admin
    )
    assert first.status_code == 200, first.text
    assert first.json()["target_path"] == "pkg"
    again = world.client.post(
        "/api/agents/scanner/scan",
        json={"target_path": first.json()["target_path"], "scan_type": "quick"},
        headers=admin,
    )
    assert again.status_code == 200, again.text
    assert again.json()["target_path"] == "pkg"
    whole = world.client.post("/api/agents/scanner/scan", json={"target_path": "."}, headers=admin)
    assert (whole.status_code, whole.json()["target_path"]) == (200, ".")
    # The scan's answer, as shown, is the fixer's input.
    fix = world.client.post(
        "/api/agents/fixer/fix", json={"scan_results": first.json(), "dry_run": True}, headers=admin
    )
    assert fix.status_code == 200, fix.text
    assert (fix.json()["target_path"], list(fix.json()["diffs"])) == ("pkg", ["a.py"])
    assert _leaks(world, first.text + again.text + whole.text + fix.text) == []


def test_a_dry_run_diff_shown_over_http_still_applies_with_git(world: ApiWorld) -> None:
    answer = _scan_and_fix(world, dry_run=True)
    fix = answer.json()["result"]["fix"]
    assert fix["dry_run"] is True
    assert list(fix["diffs"]) == ["a.py"]
    diff = fix["diffs"]["a.py"]
    assert diff.startswith("--- a/a.py\n+++ b/a.py\n")
    folder = world.workspace / "pkg"
    assert (folder / "a.py").read_text() == "import os\nx = 1\n"  # nothing written
    applied = subprocess.run(
        ["git", "apply", "-"], input=diff, cwd=folder, capture_output=True, text=True, check=False
    )
    assert applied.returncode == 0, applied.stderr
    assert (folder / "a.py").read_text() == "x = 1\n"


def test_a_task_result_and_the_agent_history_show_no_server_path(world: ApiWorld) -> None:
    admin = H(world.key("admin"))
    answer = world.client.post(
        "/api/agents/orchestrator/execute?wait=true",
        json={"task_type": "audit", "required_capabilities": ["scan"]},
        headers=admin,
    )
    assert answer.status_code == 200, answer.text
    results = answer.json()["result"]["results"]
    assert [r["target_path"] for r in results.values()] == ["."]  # the omitted folder
    assert answer.json()["record"]["params"]["parameters"]["target_path"] == "."
    assert _leaks(world, answer.text) == []
    history = world.client.get("/api/agents/scanner/history", headers=admin)
    assert history.status_code == 200
    rows = history.json()["history"]
    assert [r["target_path"] for row in rows for r in row["results"].values()] == ["."]
    assert _leaks(world, history.text) == []


def test_a_path_in_another_workspace_root_is_shown_by_its_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    first = tmp_path / "first"
    first.mkdir()
    w = ApiWorld(tmp_path, {"workspace_roots": (first, tmp_path / "workspace")})
    try:
        answer = w.client.post(
            "/api/agents/scanner/scan",
            json={"target_path": str(w.workspace / "pkg")},
            headers=H(w.key("admin")),
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["target_path"] == "<workspace 2>/pkg"
        assert _leaks(w, answer.text) == []
    finally:
        w.close()


# -- the dashboard ------------------------------------------------------------------------


def _page(world: ApiWorld, run_id: str) -> str:
    page = signed_in(world, "admin").get(f"/ui/runs/{run_id}")
    assert page.status_code == 200
    return html.unescape(page.text)


def test_the_run_page_shows_workspace_paths_relative(world: ApiWorld) -> None:
    run_id = _scan_and_fix(world).json()["run_id"]
    text = _page(world, run_id)
    assert _leaks(world, text) == []
    assert '"target_path": "pkg"' in text  # the parameters and the outputs
    assert '"backup_path": "<server path>"' in text
    assert '"headline": "applied 2 fixes in 1 files, 0 left; backup <server path>"' in text


def test_a_failed_step_error_and_an_old_task_page_show_no_server_path(world: ApiWorld) -> None:
    backups = world.root.resolve() / "backups"
    bogus = str(world.workspace.resolve() / "pkg")  # not a backup: the undo is refused
    answer = world.client.post(
        "/api/agents/orchestrator/execute?wait=true",
        json={
            "task_type": "undo",
            "parameters": {"undo": {"backup_path": bogus}},
            "required_capabilities": ["fix"],
        },
        headers=H(world.key("admin")),
    )
    # The fixer refuses, naming the path it got and the backups folder.
    assert answer.status_code == 200, answer.text
    error = answer.json()["result"]["error"]
    assert error == (
        "agent 'fixer' failed: PermanentError: undo: pkg is not a backup of this fixer "
        "(<server path>) (permanent: not retried)"
    )
    steps = answer.json()["record"]["steps"].values()
    assert [s["error"] for s in steps if s["error"]] == [
        "PermanentError: undo: pkg is not a backup of this fixer (<server path>)"
    ]
    assert str(backups) not in answer.text
    assert _leaks(world, answer.text) == []
    assert _leaks(world, _page(world, answer.json()["run_id"])) == []
    # A task recorded before tasks were workflow runs (api_task_runs) has its own page.
    request = {"task_type": "scan", "parameters": {"target_path": bogus}}
    tasks = SqlTaskRuns(world.system.engine)
    tasks.create(TaskRun("legacy000001", "scan", request, "running", None, 1.0))
    result = {"results": {"look": {"target_path": bogus, "log": str(world.root / "x.log")}}}
    tasks.update("legacy000001", status="succeeded", result=result, finished_at=2.0)
    read = world.client.get("/api/runs/legacy000001", headers=H(world.key("admin")))
    assert read.json()["request"]["parameters"]["target_path"] == "pkg"
    assert read.json()["result"]["results"]["look"] == {"target_path": "pkg", "log": OUTSIDE}
    text = _page(world, "legacy000001")
    assert _leaks(world, text) == []
    assert '"log": "<server path>"' in text


# -- the rule itself ----------------------------------------------------------------------


@pytest.fixture
def shown(tmp_path: Path) -> ShownPaths:
    (tmp_path / "real" / "one").mkdir(parents=True)
    (tmp_path / "two").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real" / "one")
    return ShownPaths.of((tmp_path / "link", tmp_path / "two"))


def test_paths_under_a_root_are_relative_and_others_hidden(
    shown: ShownPaths, tmp_path: Path
) -> None:
    one, two = tmp_path / "link", tmp_path / "two"
    real = tmp_path / "real" / "one"
    assert shown.path(str(one)) == "."
    assert shown.path(f"{one}/") == "."
    assert shown.path(f"{one}/src/a.py") == "src/a.py"
    assert shown.path(f"{real}/src/a.py") == "src/a.py"  # the root with its link followed
    assert shown.path(str(two)) == "<workspace 2>"
    assert shown.path(f"{two}/x/y.py") == "<workspace 2>/x/y.py"
    assert shown.path(f"{one}/../two/b") == "<workspace 2>/b"  # folded before matching
    assert shown.path(f"{one}/../../etc/passwd") == OUTSIDE
    assert shown.path(f"{one}extra/a.py") == OUTSIDE  # a sibling sharing the prefix
    assert shown.path(str(tmp_path / "state" / "backups" / "r1-fix")) == OUTSIDE
    assert shown.path("/") == OUTSIDE
    assert shown.path(f"//{str(one).lstrip('/')}/a") == "a"


def test_only_whole_one_line_values_change_outside_messages(
    shown: ShownPaths, tmp_path: Path
) -> None:
    one = tmp_path / "link"
    diff = f"--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-open('{one}/a')\n+open('{one}/b')\n"
    code = f"path = '{one}/a.py'"
    untouched = {"diff": diff, "code": code, "url": "https://example.com/x", "n": 3, "ok": None}
    assert shown.shown(untouched) is untouched
    assert shown.shown([f"{one}/a", "b/c", 1.5]) == ["a", "b/c", 1.5]
    assert shown.shown({f"{one}/a.py": 1, "a.py": 2}) == {"a.py": 1, "a.py #2": 2}
    assert shown.shown({"/srv/x": 1, "/srv/y": 2}) == {OUTSIDE: 1, f"{OUTSIDE} #2": 2}


def test_messages_have_their_path_words_shown(shown: ShownPaths, tmp_path: Path) -> None:
    one = tmp_path / "link"
    value = {
        "headline": f"3 fixes; backup {tmp_path}/state/b1.",
        "error": f"target_path '{one}/pkg/a.py' is not a folder (see {tmp_path}/x:12)",
        "errors": [f"scan: {one}/src missing", "fix: https://x.org/a and/or 1/2"],
        "reason": "nothing to do",
        "steps": {"s": {"error": f"x={one}/q, y"}},
    }
    assert shown.shown(value) == {
        "headline": "3 fixes; backup <server path>.",
        "error": "target_path 'pkg/a.py' is not a folder (see <server path>:12)",
        "errors": ["scan: src missing", "fix: https://x.org/a and/or 1/2"],
        "reason": "nothing to do",
        "steps": {"s": {"error": "x=q, y"}},
    }


def test_a_value_nested_past_the_cap_is_hidden_whole(shown: ShownPaths) -> None:
    deep: Any = "/srv/x"
    for _ in range(MAX_SHOWN_DEPTH + 5):
        deep = [deep]
    out = shown.shown(deep)
    for _ in range(MAX_SHOWN_DEPTH):
        out = out[0]
    assert out == OUTSIDE
