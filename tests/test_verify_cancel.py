"""verify_command when its step is cancelled (Ctrl-C of the run, the step's timeout, a stop).

The command runs in its own session, so a terminal's SIGINT never reaches it: the verifier
must end its whole process group itself, or a project's test suite keeps running after
devskyy has given up on it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from devskyy.agents.codecheck import verify

DEADLINE = 10.0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


async def _read_pids(path: Path) -> list[int]:
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        words = path.read_text().split() if path.exists() else []
        if len(words) == 2:
            return [int(word) for word in words]
        await asyncio.sleep(0.02)
    raise AssertionError(f"the command did not write {path} within {DEADLINE}s")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_cancelling_the_step_kills_the_command_and_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # The shell starts a child and waits: both belong to the command's process group.
    command = f"sleep 60 & echo $$ $! > {pids}.tmp && mv {pids}.tmp {pids}; wait"

    async def scenario() -> list[int]:
        task = asyncio.create_task(verify.run(tmp_path, command, shell=True, timeout=120))
        found = await _read_pids(pids)
        assert all(_alive(pid) for pid in found)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return found

    found = asyncio.run(scenario())
    end = time.monotonic() + DEADLINE
    while any(_alive(pid) for pid in found) and time.monotonic() < end:
        time.sleep(0.02)
    assert [pid for pid in found if _alive(pid)] == []


def test_a_command_that_finishes_is_not_affected(tmp_path: Path) -> None:
    outcome = asyncio.run(verify.run(tmp_path, "echo ok", shell=False, timeout=30))
    assert (outcome.returncode, outcome.output_tail, outcome.timed_out) == (0, "ok\n", False)
