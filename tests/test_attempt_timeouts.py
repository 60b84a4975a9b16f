"""Attempt timeouts on the loop's one shared timer behave as ``asyncio.timeout`` does.

Only our own timer makes a ``StepTimeout``; a later attempt with a shorter timeout moves
the timer earlier; a cancellation from outside stays a cancellation; a result that
arrives stands; the finished attempts do not pile up in the timer's heap.
"""

from __future__ import annotations

import asyncio

import pytest

from devskyy.adapters.clock import FakeClock
from devskyy.errors import StepTimeout
from devskyy.runtime.attempt import AttemptExecutor, Plan, _Watch


def watch_of(executor: AttemptExecutor) -> _Watch:
    """The executor's timer (made by its first timed attempt)."""
    assert executor._watch is not None
    return executor._watch


@pytest.fixture
def executor() -> AttemptExecutor:
    return AttemptExecutor(FakeClock(start=1_000.0))


async def hang() -> None:
    await asyncio.Event().wait()


def test_a_shorter_timeout_started_later_fires_first(executor: AttemptExecutor) -> None:
    async def main() -> tuple[object, object]:
        async def slow_ok() -> str:
            await asyncio.sleep(0.05)
            return "done"

        long = asyncio.create_task(executor.once(slow_ok, Plan("agent 'long'", timeout=5.0)))
        await asyncio.sleep(0)  # the long one holds the timer first
        short = asyncio.create_task(executor.once(hang, Plan("agent 'short'", timeout=0.01)))
        began = asyncio.get_running_loop().time()
        results = await asyncio.gather(long, short, return_exceptions=True)
        assert asyncio.get_running_loop().time() - began < 1.0
        return results[0], results[1]

    long, short = asyncio.run(main())
    assert long == "done"
    assert isinstance(short, StepTimeout)
    assert str(short) == "agent 'short' did not answer within 0.01s"


def test_a_cancellation_from_outside_stays_a_cancellation(executor: AttemptExecutor) -> None:
    async def main() -> None:
        task = asyncio.create_task(executor.once(hang, Plan("agent 'x'", timeout=5.0)))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()

    asyncio.run(main())


def test_finished_attempts_do_not_pile_up(executor: AttemptExecutor) -> None:
    async def quick() -> int:
        return 1

    async def main() -> tuple[int, int]:
        total = 0
        for _ in range(1_000):
            total += await executor.once(quick, Plan("agent 'q'", timeout=30.0))
        return total, len(watch_of(executor).heap)

    total, kept = asyncio.run(main())
    assert total == 1_000
    assert kept <= 129  # rebuilt whenever finished entries are most of it (64 at least)


def test_a_timed_out_attempt_does_not_cancel_the_next_one(executor: AttemptExecutor) -> None:
    async def main() -> str:
        with pytest.raises(StepTimeout):
            await executor.once(hang, Plan("agent 'x'", timeout=0.01))

        async def later() -> str:
            await asyncio.sleep(0.02)  # past the first deadline: nothing pending cancels it
            return "ok"

        return await executor.once(later, Plan("agent 'x'", timeout=5.0))

    assert asyncio.run(main()) == "ok"


def test_the_timer_follows_the_running_loop_and_lets_an_old_one_go(
    executor: AttemptExecutor,
) -> None:
    async def quick() -> int:
        return 1

    async def on_a_loop() -> asyncio.AbstractEventLoop:
        assert await executor.once(quick, Plan("agent 'q'", timeout=30.0)) == 1
        assert watch_of(executor).loop is asyncio.get_running_loop()
        return asyncio.get_running_loop()

    first = asyncio.run(on_a_loop())
    second = asyncio.run(on_a_loop())  # a new loop: a timer of its own, the old one dropped
    assert first is not second
    assert executor._watch is not None
    assert executor._watch.loop is second
