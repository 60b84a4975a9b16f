"""The Dask step runner: each attempt of a step is ONE task on a Dask distributed cluster.

``--runner dask`` (``DEVSKYY_RUNNER=dask``) on ``run``, ``serve`` and ``watch`` replaces the
in-process runner with ``DaskStepRunner``; ``--scheduler tcp://HOST:PORT`` connects to a
running cluster, else ``start_dask`` starts a ``LocalCluster`` of worker processes on this
machine (one per core, one thread each: CPU-bound agents get every core despite the GIL)
and logs its dashboard link. Workers run ``devskyy.runtime.dask_worker`` (docs/scaling.md).

devskyy keeps every decision (``runtime.attempt``): a task is submitted with ``pure=False``
and ``retries=0``, its Dask ``priority`` is the workflow's (critical 3 … low 0) and its
``resources`` the Agent manifest's; the scheduler's ``allowed-failures`` is set to 0 on
connect, so a task whose worker dies is never re-run by Dask: it fails with
``KilledWorker``, which becomes a ``TemporaryError`` that devskyy's retry policy retries
(on another worker) and records. An attempt cut short by its timeout cancels its future,
and the worker stops the agent at the same limit (the timeout travels with the task).
When the scheduler goes away, the attempts in flight fail with ``RunnerLost`` (temporary):
the workflow engine stops the run as ``interrupted``, and ``runs resume`` with the cluster
back finishes it. Agents with ``placement: local`` run in this process (the local runner).

The worker of every attempt goes back in the ``AttemptNote`` (recorded with the attempt's
event); attempts are counted per runner and outcome for ``/metrics``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devskyy.adapters.store_url import absolute_sqlite_url
from devskyy.errors import DevskyyError, RunnerLost, TemporaryError
from devskyy.extras import missing_extra_message
from devskyy.model.manifests import Agent, Priority
from devskyy.runtime.dask_worker import AttemptAnswer, AttemptTask, run_attempt
from devskyy.runtime.step_context import current_step
from devskyy.runtime.step_runner import AttemptNote, RunnerCounts, StepRunner, attempt_note

log = logging.getLogger("devskyy.runner")
WORKER_MODULE = "devskyy.runtime.dask_worker"
RUNNERS = ("local", "dask")


class RunnerUnavailable(DevskyyError):
    """The Dask runner cannot start: the extra is missing or the scheduler unreachable."""


def dask_priority(priority: Priority) -> int:
    """Dask runs higher numbers first: critical 3, high 2, medium 1, low 0."""
    return 3 - priority.rank


def absolute_state_url(url: str) -> str:
    """A relative SQLite path made absolute: workers may not share this process's cwd."""
    return absolute_sqlite_url(url, Path.cwd())


def _distributed() -> Any:
    """The ``distributed`` module, or the one-line error naming the extra."""
    try:
        import distributed  # noqa: PLC0415 - an optional extra
    except ModuleNotFoundError as exc:
        raise RunnerUnavailable(f"--runner dask: {missing_extra_message(exc) or exc}") from None
    return distributed


@dataclass
class DaskCluster:
    """The client, and the LocalCluster when this process started one; ``close`` ends both."""

    client: Any
    cluster: Any | None
    address: str

    @property
    def dashboard(self) -> str | None:
        link = getattr(self.client, "dashboard_link", None)
        return str(link) if link else None

    async def close(self) -> None:
        try:
            await self.client.close()
        finally:
            if self.cluster is not None:
                await self.cluster.close()


async def start_dask(
    scheduler: str | None = None, *, n_workers: int | None = None, timeout: float = 30.0
) -> DaskCluster:
    """Connect to ``scheduler``, or start a LocalCluster of ``n_workers`` processes."""
    distributed = _distributed()
    import dask  # noqa: PLC0415 - comes with distributed

    cluster = None
    if scheduler is None:
        # Set before the scheduler exists: it reads allowed-failures when it starts.
        with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
            cluster = await distributed.LocalCluster(
                n_workers=n_workers or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                asynchronous=True,
                dashboard_address=":0",
                preload=[WORKER_MODULE],
            )
        target: Any = cluster
    else:
        target = scheduler
    try:
        client = await distributed.Client(target, asynchronous=True, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            await cluster.close()
        raise RunnerUnavailable(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None
    # An existing scheduler may allow re-runs after a worker death: devskyy decides those.
    # A lambda travels by value (cloudpickle): the scheduler need not have devskyy.
    await client.run_on_scheduler(
        lambda dask_scheduler: setattr(dask_scheduler, "allowed_failures", 0)
    )
    handle = DaskCluster(client, cluster, str(client.scheduler.address))
    started = "started a LocalCluster" if cluster is not None else "connected to"
    log.info(
        "dask runner: %s scheduler %s, dashboard %s",
        started,
        handle.address,
        handle.dashboard or "(none)",
    )
    return handle


class DaskStepRunner:
    """A ``StepRunner`` that submits each attempt to a Dask cluster (see the module doc)."""

    name = "dask"

    def __init__(
        self,
        client: Any,
        *,
        agents: Callable[[str], Agent | None],
        local: StepRunner,
        state_url: str | None,
        prefixes: Callable[[], tuple[str, ...]],
        counts: RunnerCounts | None = None,
        code_of: Callable[[str], object] | None = None,
    ) -> None:
        self.client = client
        self._agents = agents
        self._local = local
        self._state_url = None if state_url is None else absolute_state_url(state_url)
        self._prefixes = prefixes
        # The agent's class in this process: a hot reload of its code (``agents reload``,
        # ``watch``) makes a new class, hence a new hash, and workers re-import it too.
        self._code_of = code_of or (lambda _name: None)
        self.counts = counts or getattr(local, "counts", None) or RunnerCounts()
        # Per agent: the manifest and code it was made for, its JSON, hash and the import
        # prefixes, made once per manifest and code (the prefixes scan entry points).
        self._specs: dict[str, tuple[Agent, object, str, str, tuple[str, ...]]] = {}
        self._killed: type[BaseException] = _distributed().KilledWorker
        self._cancels: set[asyncio.Future[Any]] = set()

    def _spec(self, manifest: Agent) -> tuple[str, str, tuple[str, ...]]:
        """The manifest's JSON, hash and prefixes, once per manifest object and code."""
        code = self._code_of(manifest.name)
        known = self._specs.get(manifest.name)
        if known is None or known[0] is not manifest or known[1] is not code:
            text = manifest.model_dump_json(by_alias=True)
            token = f"{text}\x00{id(code)}"  # a reloaded class is a new object
            digest = hashlib.sha256(token.encode()).hexdigest()[:16]
            prefixes = self._prefixes()
            known = self._specs[manifest.name] = (manifest, code, text, digest, prefixes)
        return known[2], known[3], known[4]

    async def run_attempt(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        note = attempt_note()
        manifest = note.agent if note is not None else None
        if manifest is None or manifest.name != name:
            manifest = self._agents(name)
        if manifest is None or manifest.spec.placement == "local":
            return await self._local.run_attempt(name, inputs)
        with self.counts.counting(self.name):
            return await self._remote(name, manifest, inputs, note)

    async def _remote(
        self, name: str, manifest: Agent, inputs: dict[str, Any], note: AttemptNote | None
    ) -> dict[str, Any]:
        import json  # noqa: PLC0415 - stdlib, kept next to its one use

        text, digest, prefixes = self._spec(manifest)
        step = current_step()
        task = AttemptTask(
            name,
            text,
            digest,
            self._state_url,
            prefixes,
            None if step is None else step.run_id,
            None if step is None else step.step,
            json.dumps(inputs),
            None if note is None else note.timeout,
        )
        where = name if step is None else f"{step.run_id}-{step.step}"
        attempt = 1 if note is None else note.attempt
        future = self.client.submit(
            run_attempt,
            task,
            key=f"devskyy-{where}-a{attempt}-{uuid.uuid4().hex[:8]}",
            pure=False,
            retries=0,
            priority=dask_priority(Priority.MEDIUM if note is None else note.priority),
            resources=dict(manifest.spec.resources) or None,
        )
        try:
            answer: AttemptAnswer = await future
        except asyncio.CancelledError:
            # Our timeout or a cancelled run: the attempt is abandoned, the task too.
            cancel = asyncio.ensure_future(self.client.cancel([future]))
            self._cancels.add(cancel)
            cancel.add_done_callback(self._cancels.discard)
            raise
        except self._killed as exc:
            worker = getattr(exc, "last_worker", None)
            if note is not None and worker is not None:
                note.worker = str(getattr(worker, "address", worker))
            raise TemporaryError(f"the Dask worker running the attempt died: {exc}") from None
        except Exception as exc:
            if self._scheduler_lost(exc):
                # One line: Dask's own text repeats the task key over several lines.
                raise RunnerLost(
                    f"the Dask scheduler {self.client.scheduler.address} is gone "
                    f"({type(exc).__name__}); resume the run once it is back"
                ) from None
            raise
        if note is not None:
            note.worker = answer.worker
        if answer.error is not None:
            raise answer.error
        assert answer.output is not None
        result: dict[str, Any] = json.loads(answer.output)
        return result

    def _scheduler_lost(self, exc: BaseException) -> bool:
        """A cancelled future or a closed connection while the client is not running."""
        import concurrent.futures  # noqa: PLC0415

        if isinstance(exc, OSError | concurrent.futures.CancelledError):
            return True
        return str(getattr(self.client, "status", "running")) != "running"
