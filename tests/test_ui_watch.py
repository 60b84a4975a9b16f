"""``devskyy watch --serve`` as a real process: the dashboard compares live state with the tree.

The daemon names the tree it watches; the overview says "in sync" after the first pass,
"tree invalid" while a broken edit is rejected (the last good state keeps running), and
"in sync" again once a valid edit has been applied as a new revision.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from api_fixtures import (
    answers,
    create_key,
    free_port,
    make_workspace,
    post_login,
    stop_process,
    subprocess_env,
    wait_until,
    write_tree,
)


def _tile(page: str) -> str:
    """The text of the overview's "Live state vs. the tree" tile."""
    return page.split('id="t-drift"')[1].split("</section>", maxsplit=1)[0]


@pytest.mark.slow
def test_watch_serve_shows_whether_live_state_matches_the_tree(tmp_path: Path) -> None:
    tree = write_tree(tmp_path, make_workspace(tmp_path), code=False)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    env = subprocess_env()
    cli = [sys.executable, "-m", "devskyy.cli", "--state", state]
    key = create_key(cli, env, tmp_path, "ops", "operator")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [*cli, "watch", str(tree), "--serve", "--port", str(port), "--debounce", "0.1"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: proc.poll() is not None or answers(f"{base}/healthz"), "the server")
        assert proc.poll() is None
        with httpx.Client(base_url=base, timeout=10) as http:
            assert post_login(http, {"api_key": key}).status_code == 303

            def tile() -> str:
                return _tile(http.get("/ui/").text)

            wait_until(lambda: "✓ in sync" in tile(), "the first pass")
            # The tree is on the server, outside the workspace: no path is shown for it.
            assert "<code>&lt;server path&gt;</code> matches live state." in tile()
            assert str(tmp_path) not in tile()

            echo = tree / "agents" / "echo.yaml"
            good = echo.read_text()
            echo.write_text(good.replace("timeoutSeconds: 30", "timeoutSeconds: -1"))
            wait_until(lambda: "✗ tree invalid" in tile(), "the broken edit to show")
            assert "timeoutSeconds" in tile()
            assert str(tmp_path) not in tile()  # the problem's file:line, without the path

            echo.write_text(good.replace("timeoutSeconds: 30", "timeoutSeconds: 31"))
            wait_until(lambda: "✓ in sync" in tile(), "the valid edit to be applied")
            assert 'href="/ui/revisions/2">#2</a>' in http.get("/ui/").text
    finally:
        err = stop_process(proc)
    assert proc.returncode == 0, err
