"""Running the project's own check (``verify_command``) before and after a fix.

This runs the scanned project's code: its test suite, its build. It is off unless a
``verify_command`` is given. The command runs in the target root, without a shell: it is
split as a POSIX shell would split words (``shlex``), and quotes group words but no
expansion, pipe or redirection happens. ``shell: true`` hands the text to ``/bin/sh -c``
instead, only when the caller asks. The process gets the environment of devskyy minus
its own ``DEVSKYY_*`` settings (a state URL may carry a password), runs in its own
process group, and is killed with its children when it outlives ``timeout_seconds`` or
the step is cancelled (Ctrl-C, the step's timeout, a stop).

The result keeps the exit status and the last ``TAIL_CHARS`` characters of the output,
with any secret detect-secrets finds in them masked.
``judge`` compares a run after the fix with the one before: only "passed before, fails
after" is the fix's fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devskyy.agents.codecheck import redaction

TAIL_CHARS = 2_000


class VerifyError(ValueError):
    """The verify command cannot be run as given (empty, unparsable, not found)."""


@dataclass(frozen=True)
class Outcome:
    """One run of the verify command."""

    command: str
    returncode: int | None  # None: killed at the timeout
    output_tail: str
    timed_out: bool

    @property
    def passed(self) -> bool:
        return self.returncode == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ran": True,
            "command": self.command,
            "passed": self.passed,
            "returncode": self.returncode,
            "timed_out": self.timed_out,
            "output_tail": self.output_tail,
        }


def argv_of(command: str, shell: bool) -> list[str]:
    """The argument vector: ``shlex`` words, or ``/bin/sh -c command`` when asked."""
    if not command.strip():
        raise VerifyError("verify_command is empty")
    if shell:
        return ["/bin/sh", "-c", command]
    try:
        return shlex.split(command)
    except ValueError as exc:
        raise VerifyError(f"verify_command {command!r} cannot be split into words: {exc}") from None


def _environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DEVSKYY_")}


async def run(root: Path, command: str, *, shell: bool, timeout: float) -> Outcome:
    """Run ``command`` in ``root``; a timeout kills its whole process group."""
    argv = argv_of(command, shell)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=root,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=_environment(),
            start_new_session=True,
        )
    except FileNotFoundError:
        raise VerifyError(f"verify_command: program {argv[0]!r} not found") from None
    except PermissionError:
        raise VerifyError(f"verify_command: program {argv[0]!r} is not executable") from None
    timed_out = False
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        timed_out = True
        _kill_group(process.pid)
        out, _ = await process.communicate()
    except BaseException:
        # Cancelled (Ctrl-C of the run, the step's timeout, a stop): the command has its own
        # session, so no terminal signal reaches it; end its group rather than orphan it.
        _kill_group(process.pid)
        # Reap it and close its pipe (killed, it ends at once); a second cancel is the same one.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(process.communicate())
        raise
    tail = out.decode("utf-8", errors="replace")[-TAIL_CHARS:]
    # A test suite may print a secret (a token from its environment), a command may
    # carry one: what the run record keeps is masked like every other text shown.
    shown = [command, *tail.splitlines()]
    found = await asyncio.to_thread(redaction.secrets_in_lines, "output.txt", shown)
    return Outcome(
        command=redaction.redact(command, found),
        returncode=None if timed_out else process.returncode,
        output_tail=redaction.redact(tail, found),
        timed_out=timed_out,
    )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def judge(before: dict[str, Any] | None, after: Outcome) -> str | None:
    """Why the fix broke the project (its check passed before and fails after), or None."""
    if not before or not before.get("ran") or not before.get("passed") or after.passed:
        return None
    how = (
        "was killed at its timeout" if after.timed_out else f"exited with status {after.returncode}"
    )
    return f"verify_command {after.command!r} passed before the fix and {how} after it"
