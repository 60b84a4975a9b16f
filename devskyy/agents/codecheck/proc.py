"""Running the analyzers as subprocesses (argument lists only, never a shell).

Each tool runs in its own process so that ruff and bandit work on separate cores while
the event loop stays free; long file lists are split so that no command line overflows.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from devskyy.errors import ExecutionError, PermanentError, TemporaryError

MAX_ARGS_CHARS = 100_000
T = TypeVar("T")


@dataclass(frozen=True)
class Completed:
    """What a finished process left: exit code and both streams as text."""

    returncode: int
    stdout: str
    stderr: str


class ToolError(RuntimeError):
    """An analyzer failed in a way that makes its result unusable.

    ``permanent`` is True when running it again on the same tree would fail the same way
    (a bad configuration, a crash on given input: a non-zero exit); False when the
    process was killed by a signal (out of memory, a timeout), which a retry may survive.
    """

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent


def classify(exc: ToolError) -> ExecutionError:
    """The runtime's error for a failed analyzer: permanent (never retried) or temporary."""
    if exc.permanent:
        return PermanentError(str(exc))
    return TemporaryError(str(exc))


def tool_error(what: str, done: Completed) -> ToolError:
    """The error for a failed run of ``what``: its exit status and stderr's first lines."""
    detail = done.stderr.strip()[:500] or "(no output)"
    if done.returncode < 0:
        signal = -done.returncode
        return ToolError(f"{what} was killed by signal {signal}: {detail}", permanent=False)
    return ToolError(f"{what} failed (exit {done.returncode}): {detail}")


async def run(
    argv: Sequence[str], *, stdin: str | None = None, cwd: Path | None = None
) -> Completed:
    """Run ``argv`` and wait for it; the caller decides which exit codes are failures."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
    )
    out, err = await process.communicate(stdin.encode("utf-8") if stdin is not None else None)
    assert process.returncode is not None
    return Completed(
        process.returncode,
        out.decode("utf-8", errors="replace"),
        err.decode("utf-8", errors="replace"),
    )


async def gather_in_order(jobs: Sequence[Awaitable[T]]) -> list[T]:
    """Wait for every job; then raise the first failure in the jobs' order, if any.

    ``asyncio.gather`` raises whichever fails first in time, which would make the same
    broken configuration report ruff's or ruff format's error at random, and leave the
    other analyzers running unawaited.
    """
    results = await asyncio.gather(*jobs, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]  # no exception is left in it


def chunks(paths: Sequence[str], limit: int = MAX_ARGS_CHARS) -> list[list[str]]:
    """Split a file list so that each command line stays under ``limit`` characters."""
    out: list[list[str]] = []
    current: list[str] = []
    size = 0
    for path in paths:
        if current and size + len(path) + 1 > limit:
            out.append(current)
            current, size = [], 0
        current.append(path)
        size += len(path) + 1
    if current:
        out.append(current)
    return out


def python() -> str:
    """The interpreter running devskyy (tools are run from the same environment)."""
    return sys.executable
