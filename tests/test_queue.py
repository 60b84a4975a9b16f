"""PriorityGate: critical first, a concurrency limit, and cancellation that loses no slot."""

from __future__ import annotations

import asyncio

import pytest

from devskyy.model.manifests import Priority
from devskyy.runtime.queue import PriorityGate


async def hold(
    gate: PriorityGate,
    priority: Priority,
    tag: str,
    log: list[str],
    release: asyncio.Event,
    sub: int = 0,
) -> None:
    async with gate.slot(priority, sub):
        log.append(tag)
        await release.wait()


def test_waiters_are_served_by_priority_then_sub_rank_then_arrival() -> None:
    async def scenario() -> list[str]:
        gate = PriorityGate(1)
        log: list[str] = []
        release = asyncio.Event()
        first = asyncio.create_task(hold(gate, Priority.LOW, "first", log, release))
        await asyncio.sleep(0)
        order = [
            (Priority.LOW, 0, "low-a"),
            (Priority.MEDIUM, 3, "medium-sub3"),
            (Priority.MEDIUM, 1, "medium-sub1"),
            (Priority.CRITICAL, 0, "critical"),
            (Priority.LOW, 0, "low-b"),
            (Priority.HIGH, 0, "high"),
        ]
        tasks = [asyncio.create_task(hold(gate, p, t, log, release, s)) for p, s, t in order]
        await asyncio.sleep(0)
        assert gate.describe() == {"max_concurrency": 1, "running": 1, "waiting": 6, "admitted": 1}
        release.set()
        await asyncio.gather(first, *tasks)
        assert gate.describe()["running"] == 0
        return log

    assert asyncio.run(scenario()) == [
        "first",
        "critical",
        "high",
        "medium-sub1",
        "medium-sub3",
        "low-a",
        "low-b",
    ]


def test_limit_allows_that_many_at_once() -> None:
    async def scenario() -> tuple[int, int]:
        gate = PriorityGate(3)
        log: list[str] = []
        release = asyncio.Event()
        tasks = [
            asyncio.create_task(hold(gate, Priority.MEDIUM, str(i), log, release)) for i in range(5)
        ]
        await asyncio.sleep(0)
        running = len(log)
        waiting = gate.waiting
        release.set()
        await asyncio.gather(*tasks)
        return running, waiting

    assert asyncio.run(scenario()) == (3, 2)


def test_a_cancelled_waiter_is_skipped() -> None:
    async def scenario() -> list[str]:
        gate = PriorityGate(1)
        log: list[str] = []
        release = asyncio.Event()
        first = asyncio.create_task(hold(gate, Priority.LOW, "first", log, release))
        await asyncio.sleep(0)
        doomed = asyncio.create_task(hold(gate, Priority.CRITICAL, "doomed", log, release))
        later = asyncio.create_task(hold(gate, Priority.LOW, "later", log, release))
        await asyncio.sleep(0)
        doomed.cancel()
        await asyncio.sleep(0)
        assert gate.waiting == 1
        release.set()
        await asyncio.gather(first, later)
        assert doomed.cancelled()
        assert gate.running == 0
        return log

    assert asyncio.run(scenario()) == ["first", "later"]


def test_a_slot_handed_to_a_cancelled_waiter_is_passed_on() -> None:
    async def scenario() -> list[str]:
        gate = PriorityGate(1)
        log: list[str] = []
        release = asyncio.Event()
        tasks: dict[str, asyncio.Task[None]] = {}

        async def first() -> None:
            async with gate.slot(Priority.LOW):
                log.append("first")
                await release.wait()
            # The slot was just handed to "second"; it is cancelled before it can run.
            tasks["second"].cancel()

        tasks["first"] = asyncio.create_task(first())
        await asyncio.sleep(0)
        tasks["second"] = asyncio.create_task(hold(gate, Priority.HIGH, "second", log, release))
        tasks["third"] = asyncio.create_task(hold(gate, Priority.LOW, "third", log, release))
        await asyncio.sleep(0)
        release.set()
        await tasks["third"]
        await tasks["first"]
        assert tasks["second"].cancelled()
        assert gate.running == 0
        return log

    assert asyncio.run(scenario()) == ["first", "third"]


def test_invalid_limit() -> None:
    with pytest.raises(ValueError, match=r"^the concurrency limit must be at least 1, not 0$"):
        PriorityGate(0)
