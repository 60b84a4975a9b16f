"""The step-runner seam: something that runs ONE attempt of a JSON-in, JSON-out agent call.

devskyy keeps every decision (retries, breakers, priorities, timeouts, records: see
``runtime.attempt``); a runner only runs an attempt. ``LocalStepRunner`` runs it in this
process with asyncio, on the least-loaded replica of the agent. A distributed runner (Dask,
docs/scaling.md) implements the same Protocol: it ships ``(agent, inputs)`` to a worker that
builds the agent from its module path, and never retries on its own behalf; cancelling the
awaiting coroutine (the executor's timeout) cancels the attempt.

Inputs are JSON values (the workflow engine renders and checks them); the output must be
a JSON object, else the attempt fails with ``BrokenResult`` (the agent's fault, so the
breaker counts it). The local runner also adds the agent's one-line ``headline`` to the
result unless the agent set one.

``AttemptNote`` is what the workflow engine tells a runner about the attempt it asks for
(the workflow's priority, the attempt number) and what the runner tells back (the worker
that ran it, recorded with the attempt's event). It travels in a ``ContextVar`` because
the Protocol's signature is the agent call's (name, inputs) and an orchestrator call
outside a workflow has none; a runner with ``reads_notes = False`` (the local one) is
given none. ``RunnerCounts`` are the per-runner attempt counters of
``/metrics``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from devskyy.core.jsonvalue import json_copy
from devskyy.core.selection import least_loaded
from devskyy.errors import BrokenResult
from devskyy.model.manifests import Agent, Priority
from devskyy.runtime.agent_records import Replica


@dataclass(slots=True)
class AttemptNote:
    """One attempt, as the engine describes it to the runner and the runner answers."""

    priority: Priority = Priority.MEDIUM
    attempt: int = 1
    worker: str | None = None
    # The attempt's time limit: a remote runner stops the agent there too, so that a hung
    # attempt does not keep a worker after the coordinator gave up on it.
    timeout: float | None = None
    # The Agent manifest the run session resolved (looked up once per session, as the
    # engine's own defaults are): a remote runner ships it instead of asking live state.
    agent: Agent | None = None


_NOTE: ContextVar[AttemptNote | None] = ContextVar("devskyy_attempt_note", default=None)


def attempt_note() -> AttemptNote | None:
    """The note of the attempt being run, None outside a workflow step."""
    return _NOTE.get()


def set_note(note: AttemptNote) -> None:
    """Run the current task's attempts under ``note`` (the engine's step task: asyncio
    gives each task a copy of the context, so nothing needs resetting)."""
    _NOTE.set(note)


class RunnerCounts:
    """Attempts per (runner, outcome): ``devskyy_runner_attempts_total`` in /metrics."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def add(self, runner: str, outcome: str) -> None:
        self.counts[(runner, outcome)] += 1

    def ended(self, runner: str, error: BaseException | None) -> None:
        """Count one attempt by how it ended: ``ok``, ``error`` (it raised), or
        ``cancelled`` (anything else ended it, a cancellation above all)."""
        if error is None:
            outcome = "ok"
        elif isinstance(error, Exception):
            outcome = "error"
        else:
            outcome = "cancelled"
        self.counts[(runner, outcome)] += 1

    def snapshot(self) -> dict[tuple[str, str], int]:
        return dict(self.counts)

    def counting(self, runner: str) -> _Counting:
        """``with counts.counting(runner):`` around one attempt counts it (``ended``). A
        plain context manager, not a coroutine: no layer more per attempt."""
        return _Counting(self, runner)


class _Counting:
    __slots__ = ("counts", "runner")

    def __init__(self, counts: RunnerCounts, runner: str) -> None:
        self.counts = counts
        self.runner = runner

    def __enter__(self) -> None:
        return None

    def __exit__(self, _kind: object, error: BaseException | None, _trace: object) -> None:
        self.counts.ended(self.runner, error)


class StepRunner(Protocol):
    """Runs ONE attempt of agent ``name`` with JSON ``inputs``; returns its JSON dict."""

    async def run_attempt(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """No retry, breaker or timeout here: the attempt executor owns those."""
        ...


class LocalStepRunner:
    """In-process asyncio runner over the orchestrator's replicas."""

    name = "local"
    # Every result is checked and copied here (json_copy below): callers need not again.
    returns_json_copies = True
    # Nothing here reads the engine's AttemptNote (no worker to name, no remote limit).
    reads_notes = False

    def __init__(
        self, replicas: Callable[[str], list[Replica]], counts: RunnerCounts | None = None
    ) -> None:
        self._replicas = replicas
        self.counts = counts or RunnerCounts()

    async def run_attempt(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        # Counted by ``RunnerCounts.ended`` directly: no context manager object per
        # attempt on the per-step path.
        try:
            replicas = self._replicas(name)
            if len(replicas) == 1:
                replica = replicas[0]
            else:
                replica = replicas[least_loaded([(r.outstanding, r.served) for r in replicas])]
            replica.outstanding += 1
            replica.served += 1
            try:
                result = await replica.agent.execute_core_function(**inputs)
            finally:
                replica.finished_one()
            output = self._checked(name, replica, result)
        except BaseException as exc:
            self.counts.ended(self.name, exc)
            raise
        self.counts.ended(self.name, None)
        return output

    @staticmethod
    def _checked(name: str, replica: Replica, result: object) -> dict[str, Any]:
        """The attempt's result as a fresh JSON dict, with the agent's headline."""
        if not isinstance(result, dict):
            raise BrokenResult(f"agent {name!r} returned {type(result).__name__}, not a dict")
        try:
            output: dict[str, Any] = json_copy(result)
        except (TypeError, ValueError) as exc:
            raise BrokenResult(f"output of agent {name!r} is not JSON: {exc}") from None
        if "headline" not in output and replica.says_headline:
            try:
                line = replica.agent.headline(output)
            except Exception:  # a summary must never fail a call
                line = None
            if line:
                output["headline"] = line
        return output
