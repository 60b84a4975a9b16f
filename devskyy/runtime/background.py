"""Work started in the background by a long-running process (the API, the daemon).

``BackgroundTasks.start(coro)`` keeps a reference to each task (so none is garbage
collected mid-run) and ``drain(grace)`` is the graceful stop: stop accepting new work,
wait up to ``grace`` seconds for what is running, then cancel the rest. A cancelled
workflow run keeps every step result already recorded and is resumable with
``devskyy runs resume`` (its recorded status is ``cancelled``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from devskyy.errors import StateError


@dataclass(frozen=True)
class DrainResult:
    """How many tasks finished within the grace period and how many were cancelled."""

    finished: int
    cancelled: int


class BackgroundTasks:
    """A set of asyncio tasks with a graceful drain."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self.accepting = True

    def __len__(self) -> int:
        return len(self._tasks)

    def start(
        self, coro: Coroutine[Any, Any, Any], *, name: str | None = None
    ) -> asyncio.Task[Any]:
        """Run ``coro`` in the background; refused once draining has begun."""
        if not self.accepting:
            coro.close()
            raise StateError("shutting down: not accepting new work")
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, grace: float) -> DrainResult:
        """Stop accepting, wait up to ``grace`` seconds, cancel what is left."""
        self.accepting = False
        pending = set(self._tasks)
        if not pending:
            return DrainResult(0, 0)
        _done, still = await asyncio.wait(pending, timeout=grace)
        for task in still:
            task.cancel()
        if still:
            await asyncio.gather(*still, return_exceptions=True)
        return DrainResult(len(pending) - len(still), len(still))


def background_of(system: Any) -> BackgroundTasks:
    """The background tasks of a ``System`` (its ``background`` field)."""
    tasks = system.background
    assert isinstance(tasks, BackgroundTasks)
    return tasks
