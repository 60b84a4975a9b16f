"""Running the analyzers as subprocesses (argument lists only, never a shell).

Each tool runs in its own process so that ruff and bandit work on separate cores while
the event loop stays free; long file lists are split so that no command line overflows.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MAX_ARGS_CHARS = 100_000


@dataclass(frozen=True)
class Completed:
    """What a finished process left: exit code and both streams as text."""

    returncode: int
    stdout: str
    stderr: str


class ToolError(RuntimeError):
    """An analyzer failed in a way that makes its result unusable."""


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
