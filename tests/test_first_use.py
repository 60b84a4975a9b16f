"""What a new user meets on a machine with only part of devskyy installed.

Each test runs the real CLI in a subprocess; a missing optional module is simulated the way
Python itself reports one (``sys.modules[name] = None`` makes ``import name`` raise
``ModuleNotFoundError`` with that name), so the message is the one a fresh install prints.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BLOCKED_RUN = (
    "import sys\n"
    "for name in sys.argv[1].split(','):\n"
    "    sys.modules[name] = None\n"
    "sys.argv = ['devskyy', *sys.argv[2:]]\n"
    "from devskyy.cli import main\n"
    "main()\n"
)


def cli_without(blocked: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVSKYY_")}
    return subprocess.run(
        [sys.executable, "-c", BLOCKED_RUN, blocked, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_postgresql_url_without_psycopg_names_the_extra(tmp_path: Path) -> None:
    url = "postgresql+psycopg://user:hunter2@127.0.0.1:1/db"
    done = cli_without("psycopg", tmp_path, "--state", url, "get", "agents")
    assert (done.returncode, done.stdout, done.stderr) == (
        1,
        "",
        "error: state URL 'postgresql+psycopg://user:***@127.0.0.1:1/db': its database "
        "driver is not installed ('psycopg' is not installed: "
        "pip install 'devskyy[postgres]' (a PostgreSQL store))\n",
    )
    assert list(tmp_path.iterdir()) == []  # nothing was created


def test_a_driver_devskyy_has_no_extra_for_keeps_pythons_words(tmp_path: Path) -> None:
    url = "postgresql+psycopg2://user@127.0.0.1:1/db"
    done = cli_without("psycopg2", tmp_path, "--state", url, "get", "agents")
    assert (done.returncode, done.stderr) == (
        1,
        f"error: state URL {url!r}: its database driver is not installed "
        "(import of psycopg2 halted; None in sys.modules)\n",
    )


def test_the_sign_in_page_has_a_title(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from api_fixtures import ApiWorld  # noqa: PLC0415  (needs the serve extra)

    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    world = ApiWorld(tmp_path, code=False)
    try:
        answer = world.client.get("/ui/login")
    finally:
        world.close()
    # The browser tab and the history list showed "· devskyy" (an empty title).
    assert answer.status_code == 200
    assert "<title>Sign in · devskyy</title>" in answer.text


def test_an_unknown_dashboard_page_is_a_page_not_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api_fixtures import ApiWorld, browser, post_login  # noqa: PLC0415  (needs the serve extra)

    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    world = ApiWorld(tmp_path, code=False)
    try:
        client = browser(world)
        signed_out = client.get("/ui/nope")
        assert (signed_out.status_code, signed_out.headers["content-type"][:9]) == (
            404,
            "text/html",
        )
        assert "Sign out" not in signed_out.text
        assert post_login(client, {"api_key": world.key("guest")}).status_code == 303
        answer = client.get("/ui/nope/<b>")
        # The API's 404 was {"error": "not_found", ...} as JSON in the browser.
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("text/html")
        assert "<title>No such page · devskyy</title>" in answer.text
        assert "There is no page /ui/nope/&lt;b&gt;." in answer.text
        assert "Sign out" in answer.text
        # Real pages still win over the catch-all.
        assert client.get("/ui/graph").status_code == 200
        assert (
            client.get("/api/nope", headers={"X-API-Key": world.key("guest")}).json()["error"]
            == "not_found"
        )
    finally:
        world.close()


def test_an_agent_package_off_the_python_path_says_how_to_put_it_there(tmp_path: Path) -> None:
    # The recipe of docs/cli.md (discover): a package in the current folder, which the
    # console script does not put on sys.path (python -m would, so the script runs here).
    package = tmp_path / "mycompany" / "agents"
    package.mkdir(parents=True)
    (tmp_path / "mycompany" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "greeter_agent.py").write_text(
        "from devskyy import BaseAgent\n\n\nclass GreeterAgent(BaseAgent):\n"
        "    capabilities = ['greet']\n"
    )
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "greeter.yaml").write_text(
        "apiVersion: devskyy.dev/v1\nkind: Agent\nmetadata: {name: greeter}\nspec:\n"
        "  module: mycompany.agents.greeter_agent:GreeterAgent\n  capabilities: [greet]\n"
    )
    script = Path(sys.executable).parent / "devskyy"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["DEVSKYY_ALLOWED_MODULES"] = "mycompany"

    def validate() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), "validate", "--check-agents", "manifests"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    done = validate()
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "manifests/greeter.yaml:5:3: spec.module: cannot import "
        "'mycompany.agents.greeter_agent': ModuleNotFoundError: No module named 'mycompany' "
        "(put the folder that holds 'mycompany' on PYTHONPATH, or pip install its project)\n"
        "manifests: 1 problem\n"
    )
    env["PYTHONPATH"] = str(tmp_path)  # as the hint says: then it is found
    again = validate()
    assert (again.returncode, again.stderr) == (0, ""), again.stderr


def test_an_omitted_folder_with_no_workspace_folder_is_404_without_the_servers_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api_fixtures import ApiWorld  # noqa: PLC0415  (needs the serve extra)

    # serve's default ./workspace in a fresh checkout: it does not exist. The task used to
    # run and fail with "target_path '/srv/…/workspace' is not a folder" in a 200 answer.
    monkeypatch.setenv("DEVSKYY_ALLOWED_MODULES", "fake_workflow_agents")
    missing = tmp_path / "no-such-workspace"
    world = ApiWorld(tmp_path, settings={"workspace_roots": (missing,)})
    try:
        answer = world.client.post(
            "/api/agents/orchestrator/execute?wait=true",
            headers={"X-API-Key": world.key("admin")},
            json={"task_type": "scan", "parameters": {}, "required_capabilities": ["scan"]},
        )
    finally:
        world.close()
    assert answer.status_code == 404
    assert answer.json()["detail"] == {
        "reason": "the server's workspace folder does not exist (serve --workspace)"
    }
    assert str(tmp_path) not in answer.text
