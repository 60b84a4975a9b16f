"""The local step runner: one attempt on a replica, its result a fresh JSON dict with the
agent's headline (asked only of an agent that has one to give), its outcome counted."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from devskyy.errors import BrokenResult
from devskyy.runtime.agent import BaseAgent
from devskyy.runtime.agent_records import Replica
from devskyy.runtime.step_runner import LocalStepRunner


class Plain(BaseAgent):
    def __init__(self, result: Any) -> None:
        super().__init__("plain")
        self.result = result

    async def execute_core_function(self, **kwargs: Any) -> Any:
        return self.result


class Telling(Plain):
    def headline(self, result: dict[str, Any]) -> str | None:
        return f"{len(result)} keys"


def attempt(agent: BaseAgent, **inputs: Any) -> tuple[Any, dict[tuple[str, str], int]]:
    runner = LocalStepRunner(lambda _name: [Replica(agent)])
    result = asyncio.run(runner.run_attempt("a", inputs))
    return result, runner.counts.snapshot()


def test_a_result_is_a_fresh_copy_with_the_agents_own_headline() -> None:
    given = {"n": 1, "items": [{"x": (1, 2)}], "ok": True, "none": None}
    result, counts = attempt(Telling(given))
    assert result == {
        "n": 1,
        "items": [{"x": [1, 2]}],
        "ok": True,
        "none": None,
        "headline": "4 keys",
    }
    assert result["items"] is not given["items"]
    assert counts == {("local", "ok"): 1}


def test_an_agent_without_a_headline_of_its_own_gets_none() -> None:
    result, _ = attempt(Plain({"n": 1}))
    assert result == {"n": 1}
    assert (Replica(Plain({})).says_headline, Replica(Telling({})).says_headline) == (False, True)


def test_a_result_that_is_not_json_fails_the_attempt_and_is_counted() -> None:
    runner = LocalStepRunner(lambda _name: [Replica(Plain({"at": object()}))])
    with pytest.raises(BrokenResult, match=r"^output of agent 'a' is not JSON: Object of type"):
        asyncio.run(runner.run_attempt("a", {}))
    assert runner.counts.snapshot() == {("local", "error"): 1}


def test_a_cancelled_attempt_is_counted_as_cancelled() -> None:
    class Hanging(Plain):
        async def execute_core_function(self, **kwargs: Any) -> Any:
            await asyncio.Event().wait()

    runner = LocalStepRunner(lambda _name: [Replica(Hanging({}))])

    async def cancel_it() -> None:
        task = asyncio.create_task(runner.run_attempt("a", {}))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_it())
    assert runner.counts.snapshot() == {("local", "cancelled"): 1}
