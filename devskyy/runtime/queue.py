"""``PriorityGate``: a concurrency limit whose waiters are served critical-first.

``async with gate.slot(priority): ...`` runs the body once fewer than ``limit`` bodies are
running; waiters are admitted in order of (priority rank, sub-rank, arrival), so a
critical call queued after a hundred low ones still goes next. Cancelling a waiter
removes it; a slot handed to a waiter that was cancelled at the same moment is passed on.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from devskyy.model.manifests import Priority


class PriorityGate:
    """At most ``limit`` concurrent holders; the best-ranked waiter goes next."""

    def __init__(self, limit: int = 16) -> None:
        if limit < 1:
            raise ValueError(f"the concurrency limit must be at least 1, not {limit}")
        self.limit = limit
        self.running = 0
        self.admitted = 0
        self._waiting: list[tuple[int, int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    @property
    def waiting(self) -> int:
        """Waiters still queued (cancelled ones excluded)."""
        return sum(1 for *_, fut in self._waiting if not fut.done())

    @asynccontextmanager
    async def slot(self, priority: Priority = Priority.MEDIUM, sub: int = 0) -> AsyncIterator[None]:
        """Hold one slot for the body; ``sub`` orders waiters of equal priority."""
        await self.acquire(priority, sub)
        try:
            yield
        finally:
            self.release()

    def try_acquire(self) -> bool:
        """Take a free slot without waiting, if there is one (the attempt executor's
        form: no coroutine per attempt when a slot is free); ``release`` gives it back."""
        # Live waiters exist only while every slot is taken (a release hands its slot
        # straight to the best waiter), so a free slot means nobody is ahead of us.
        if self.running < self.limit:
            self.running += 1
            self.admitted += 1
            return True
        return False

    async def acquire(self, priority: Priority, sub: int = 0) -> None:
        """Take one slot (wait for it); ``release`` gives it back."""
        if self.try_acquire():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority.rank, sub, next(self._arrivals), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                # The slot was handed over just as we were cancelled: pass it on.
                self.release()
            raise
        self.admitted += 1

    def release(self) -> None:
        """Give a slot back: to the best waiter, else to the pool."""
        while self._waiting:
            *_, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)  # the slot moves to the waiter; running is unchanged
                return
        self.running -= 1

    def describe(self) -> dict[str, int]:
        return {
            "max_concurrency": self.limit,
            "running": self.running,
            "waiting": self.waiting,
            "admitted": self.admitted,
        }
