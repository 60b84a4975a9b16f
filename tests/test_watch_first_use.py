"""``devskyy watch`` started on a tree that is broken at start, over a store that already runs
a good revision: the log names the revision that keeps running (it said ``revision=null``)."""

from __future__ import annotations

import signal
from pathlib import Path

from test_watch_daemon import _cli, env, tree  # noqa: F401  (fixtures)
from watch_process import Daemon, message


def test_a_rejected_start_names_the_revision_that_keeps_running(
    tree: Path,  # noqa: F811
    env: dict[str, str],  # noqa: F811
) -> None:
    assert _cli(tree, env, "apply", "manifests").returncode == 0
    manifest = tree / "manifests" / "echo.yaml"
    manifest.write_text(manifest.read_text().replace("priority: medium", "priority: urgent"))
    daemon = Daemon(tree, "manifests", "--debounce", "0.1", env=env)
    try:
        rejected = daemon.wait_for(message("change rejected"))
        watching = daemon.wait_for(message("watching"))
    finally:
        assert daemon.stop(signal.SIGTERM) == 0
    assert rejected["reason"] == "start"
    assert watching["revision"] == 1
