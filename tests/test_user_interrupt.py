"""Found by using devskyy as a platform engineer would (helper H8): Ctrl-C in a run.

Ctrl-C used to print only ``interrupted``; the run id and how to finish the run were
not shown (``runs list`` then ``runs resume``). The step that was running is run again
on resume; the steps that succeeded are not.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_resume_subprocess import applied_three_steps, wait_until

from devskyy.adapters.db import open_engine
from devskyy.adapters.run_store import SqlRunStore

# A parent shell may have left SIGINT ignored (background jobs); Ctrl-C must reach us.
CHILD = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from devskyy.cli import main; main(prog_name='devskyy')"
)


@pytest.mark.slow
def test_ctrl_c_names_the_run_and_how_to_resume_it(
    tmp_path: Path, state_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    count, release, env = applied_three_steps(tmp_path, state_url, monkeypatch)
    command = [sys.executable, "-c", CHILD, "--state", state_url]
    proc = subprocess.Popen(
        [*command, "run", "three"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    engine = open_engine(state_url)
    store = SqlRunStore(engine)
    try:
        wait_until(
            lambda: count.exists() and "blocker" in count.read_text(), "the blocker to be called"
        )
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    [run] = store.list_runs(workflow="three")
    assert proc.returncode == 130
    assert out.startswith(f"run {run.id}: workflow three\n")
    assert err == (
        f"run {run.id} interrupted; `devskyy runs resume {run.id}` finishes it "
        "(steps that succeeded are not run again)\n"
        "interrupted\n"
    )
    release.touch()
    resumed = subprocess.run(
        [*command, "runs", "resume", run.id, "-o", "json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "succeeded"
    assert count.read_text().splitlines() == ["first-agent", "blocker", "blocker", "third-agent"]
    engine.dispose()
