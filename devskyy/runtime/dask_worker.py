"""The worker side of the Dask step runner: ONE attempt of an agent, in a Dask worker process.

Workers are stock Dask workers. ``dask worker tcp://HOST:PORT --preload
devskyy.runtime.dask_worker`` (or ``devskyy worker tcp://HOST:PORT``, which starts exactly
that) makes a worker ready for devskyy: the preload starts the worker's event loop for
agents and logs it. Without the preload the first attempt does the same; the preload only
fails early when devskyy is not importable.

``run_attempt(task)`` is the function the coordinator submits, one Dask task per attempt.
The ``AttemptTask`` carries everything the worker needs, so a worker keeps no state of
its own beyond caches:

* the Agent manifest (JSON) and its hash: the agent is built from ``spec.module`` by the
  registry's own ``build`` (the import-prefix rules the coordinator uses travel with the
  task), bound to the same state URL, and ``initialize()``-d, once per worker process
  and manifest hash; a new revision that changes the agent changes the hash, and the next
  attempt builds the new agent and shuts the old one down; a hot reload of the agent's code
  on the coordinator changes the hash too, and the rebuild re-imports the module;
* the run and step (the attempt re-enters ``in_step`` so that side effects keyed by step,
  such as a payment's idempotency key, are the same as on the coordinator);
* the inputs as JSON text; the output goes back as JSON text.

Agents are asynchronous and may hold loop-bound clients, so every agent of a worker
process lives on one event loop in a thread of its own; Dask's task threads hand
coroutines to it. The answer names the worker (address, host, pid) for the attempt's
record; an error raised by the agent travels back as the exception itself (its class
drives devskyy's retry policy), or as an ``ExecutionError`` with its text when it cannot
be pickled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import socket
import threading
from dataclasses import dataclass
from typing import Any

from devskyy.adapters.clock import SystemClock
from devskyy.adapters.db import open_engine
from devskyy.adapters.engine import Engine
from devskyy.adapters.store_url import state_dir
from devskyy.errors import ExecutionError
from devskyy.model.manifests import Agent
from devskyy.model.resources import ResourceSet
from devskyy.runtime.agent_records import Replica
from devskyy.runtime.orchestrator import Orchestrator
from devskyy.runtime.registry import Registry
from devskyy.runtime.step_context import in_step
from devskyy.runtime.step_runner import LocalStepRunner


@dataclass(frozen=True)
class AttemptTask:
    """What one attempt needs on a worker (plain values, pickled by Dask)."""

    agent: str
    manifest: str
    spec_hash: str
    state_url: str | None
    prefixes: tuple[str, ...]
    run_id: str | None
    step: str | None
    inputs: str
    timeout: float | None = None


@dataclass(frozen=True)
class AttemptAnswer:
    """The outcome of one attempt: the output (JSON text) or the error, and the worker."""

    worker: str
    output: str | None = None
    error: BaseException | None = None


class _WorkerAgents:
    """This process's agents, one per (name, manifest hash), on one event loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="devskyy-agents", daemon=True
        )
        self.thread.start()
        self.built: dict[str, tuple[str, Replica]] = {}
        self.engines: dict[str, Engine] = {}
        self.lock: asyncio.Lock | None = None
        self.clock = SystemClock()

    def run(self, task: AttemptTask) -> dict[str, Any]:
        """Run one attempt on the agents' loop; blocks this Dask task thread."""
        return asyncio.run_coroutine_threadsafe(self._attempt(task), self.loop).result()

    async def _attempt(self, task: AttemptTask) -> dict[str, Any]:
        replica = await self._agent(task)
        runner = LocalStepRunner(lambda _name: [replica])
        inputs = json.loads(task.inputs)
        # The coordinator stopped waiting at the same limit: free this worker too.
        async with asyncio.timeout(task.timeout):
            if task.run_id is None or task.step is None:
                return await runner.run_attempt(task.agent, inputs)
            with in_step(task.run_id, task.step):
                return await runner.run_attempt(task.agent, inputs)

    async def _agent(self, task: AttemptTask) -> Replica:
        if self.lock is None:
            self.lock = asyncio.Lock()
        async with self.lock:  # two attempts of a new revision build it once
            known = self.built.get(task.agent)
            if known is not None and known[0] == task.spec_hash:
                return known[1]
            manifest = Agent.model_validate_json(task.manifest)
            # One instance per worker: replicas are the coordinator's concurrency knob.
            manifest = manifest.model_copy(
                update={"spec": manifest.spec.model_copy(update={"replicas": 1})}
            )
            engine = self._engine(task.state_url)
            registry = Registry(
                Orchestrator(self.clock),
                ResourceSet(),
                clock=self.clock,
                engine=engine,
                # Next to a SQLite store (a LocalCluster shares its disk), else ./.devskyy.
                state_dir=state_dir(task.state_url),
                allowed_prefixes=task.prefixes,
            )
            # A rebuild re-imports the module: the hash also changes when the coordinator
            # reloaded the agent's code, and this process still holds the old module.
            loaded = await registry.build(manifest, reload=known is not None)
            replica = Replica(loaded.instances[0])
            self.built[task.agent] = (task.spec_hash, replica)
            if known is not None:  # the previous revision's agent
                with contextlib.suppress(Exception):  # it is out of service either way
                    await known[1].agent.shutdown()
            return replica

    def _engine(self, url: str | None) -> Engine | None:
        if url is None:
            return None
        if url not in self.engines:
            self.engines[url] = open_engine(url)
        return self.engines[url]


_AGENTS: _WorkerAgents | None = None
_START = threading.Lock()


def worker_agents() -> _WorkerAgents:
    """This process's agent cache (started once, by the preload or the first attempt)."""
    global _AGENTS  # noqa: PLW0603 - one per worker process by design
    with _START:
        if _AGENTS is None:
            _AGENTS = _WorkerAgents()
        return _AGENTS


def worker_identity() -> str:
    """``tcp://10.0.0.5:40123 (host-a pid 4242)``: where this attempt ran."""
    where = f"{socket.gethostname()} pid {os.getpid()}"
    try:
        from distributed import get_worker  # noqa: PLC0415 - only inside a Dask worker

        return f"{get_worker().address} ({where})"
    except (ImportError, ValueError):
        return f"({where})"


def run_attempt(task: AttemptTask) -> AttemptAnswer:
    """THE function the coordinator submits: one attempt, never retried here."""
    worker = worker_identity()
    try:
        output = worker_agents().run(task)
    except Exception as exc:
        return AttemptAnswer(worker, error=_portable(exc))
    return AttemptAnswer(worker, output=json.dumps(output))


def _portable(exc: Exception) -> BaseException:
    """The exception itself when it survives pickling, else its text as ExecutionError."""
    try:
        pickle.loads(pickle.dumps(exc))  # noqa: S301 - our own bytes, just made
    except Exception:
        return ExecutionError(f"{type(exc).__name__}: {exc}")
    # The worker's frames hold agent locals; the coordinator needs the class and text.
    return exc.with_traceback(None)


def dask_setup(worker: Any) -> None:
    """``--preload devskyy.runtime.dask_worker``: start the agents' loop with the worker."""
    worker_agents()
    logging.getLogger("devskyy.worker").info(
        "devskyy worker ready at %s (pid %d)", getattr(worker, "address", "?"), os.getpid()
    )
