"""The step-runner seam: something that runs ONE attempt of a JSON-in, JSON-out agent call.

devskyy keeps every decision (retries, breakers, priorities, timeouts, records: see
``runtime.attempt``); a runner only runs an attempt. ``LocalStepRunner`` runs it in this
process with asyncio, on the least-loaded replica of the agent. A distributed runner (Dask,
DESIGN.md §7) implements the same Protocol: it ships ``(agent, inputs)`` to a worker that
builds the agent from its module path, and never retries on its own behalf; cancelling the
awaiting coroutine (the executor's timeout) cancels the attempt.

Inputs are JSON values (the workflow engine renders and checks them); the output must be
a JSON object, else the attempt fails with ``BrokenResult`` (the agent's fault, so the
breaker counts it). The local runner also adds the agent's one-line ``headline`` to the
result unless the agent set one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from devskyy.core.jsonvalue import json_copy
from devskyy.core.selection import least_loaded
from devskyy.errors import BrokenResult
from devskyy.runtime.agent_records import Replica


class StepRunner(Protocol):
    """Runs ONE attempt of agent ``name`` with JSON ``inputs``; returns its JSON dict."""

    async def run_attempt(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """No retry, breaker or timeout here: the attempt executor owns those."""
        ...


class LocalStepRunner:
    """In-process asyncio runner over the orchestrator's replicas."""

    def __init__(self, replicas: Callable[[str], list[Replica]]) -> None:
        self._replicas = replicas

    async def run_attempt(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
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
        if not isinstance(result, dict):
            raise BrokenResult(f"agent {name!r} returned {type(result).__name__}, not a dict")
        try:
            output: dict[str, Any] = json_copy(result)
        except (TypeError, ValueError) as exc:
            raise BrokenResult(f"output of agent {name!r} is not JSON: {exc}") from None
        if "headline" not in output:
            try:
                line = replica.agent.headline(output)
            except Exception:  # a summary must never fail a call
                line = None
            if line:
                output["headline"] = line
        return output
