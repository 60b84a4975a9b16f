"""``open_system``: THE one way to obtain the runtime objects (no module-level globals).

The guide's ``from agent.registry import registry`` becomes an explicit, closeable value::

    import asyncio
    from devskyy import ExecutionPriority, open_system

    async def main() -> None:
        async with await open_system() as system:  # ./.devskyy/state.db, or --state URL
            registry, orchestrator = system.registry, system.orchestrator

            # The agents of live state are already built (start_agents=True); again:
            summary = await registry.discover_and_register_all_agents()

            result = await registry.execute_workflow(
                workflow_name="scan_and_fix",
                parameters={"target_path": "./src", "fix_type": "auto"},
            )
            if result["status"] == "completed":
                print(f"Scan found {result['scan']['files_scanned']} files")
            else:
                print(f"Errors: {result.get('errors')}")

            task = await orchestrator.execute_task(
                task_type="scan_and_fix",
                parameters={"target_path": "./src"},
                required_capabilities=["scan", "fix"],
                priority=ExecutionPriority.HIGH,
            )
            health = await registry.health_check_all()
            print(f"{health['healthy_agents']}/{health['total_agents']} agents healthy")

    asyncio.run(main())

``open_system(state_url)`` opens the store (creating its tables), reads live state,
builds the orchestrator (execution history in the store), the workflow engine (runs in
the store) and the registry, and, unless ``start_agents=False``, builds and initializes
the applied agents. ``await system.close()`` (or leaving ``async with``) shuts the agents
down and releases the store.

Every service is built once, with its real type: ``live`` (the live-state view: one
parsed snapshot per revision, ``live.current()``), the orchestrator with its workflow
engine (``workflows``, shared by tasks and named workflows), the registry, the
background tasks of long-running entry points, and the security manager (created on first
use by ``security_manager()``, over the same live view), and, under ``watch``, the manifest
tree it watches (``manifests_tree``, for the dashboard's drift check).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from devskyy.adapters.clock import Clock, SystemClock
from devskyy.adapters.db import open_engine
from devskyy.adapters.history_store import SqlHistoryStore
from devskyy.adapters.run_store import SqlRunStore
from devskyy.adapters.state_store import SqlStateStore
from devskyy.adapters.store_url import resolve_state_url, state_dir
from devskyy.errors import NotFound
from devskyy.runtime.background import BackgroundTasks
from devskyy.runtime.live import LiveView
from devskyy.runtime.orchestrator import Orchestrator
from devskyy.runtime.registry import Registry
from devskyy.runtime.security.redaction import RedactingRunStore
from devskyy.runtime.workflows import WorkflowEngine

if TYPE_CHECKING:
    from devskyy.adapters.engine import Engine
    from devskyy.runtime.dask_runner import DaskCluster
    from devskyy.runtime.security import SecurityManager


@dataclass
class System:
    """The runtime objects of one state store, wired together."""

    url: str
    engine: Engine
    clock: Clock
    state: SqlStateStore
    orchestrator: Orchestrator
    registry: Registry
    workflows: WorkflowEngine
    live: LiveView
    security: SecurityManager | None = None
    background: BackgroundTasks = field(default_factory=BackgroundTasks)
    discovery: dict[str, Any] = field(default_factory=dict)
    manifests_tree: Path | None = None  # the tree ``watch`` keeps live state in step with
    cluster: DaskCluster | None = None  # with runner="dask": the client (and LocalCluster)
    closed: bool = False

    def security_manager(self) -> SecurityManager:
        """The security manager of this store, created once (roles from the live view)."""
        if self.security is None:
            # Imported here: keys, policy and audit are not on the path of `devskyy run`.
            from devskyy.runtime.security import SecurityManager  # noqa: PLC0415

            self.security = SecurityManager(
                self.engine, self.clock, roles_source=self.live.resources
            )
        return self.security

    async def close(self) -> None:
        """Shut every agent down, write buffered audit events, release the store (idempotent)."""
        if self.closed:
            return
        self.closed = True
        try:
            await self.registry.shutdown()
        finally:
            try:
                if self.cluster is not None:
                    await self.cluster.close()
                if self.security is not None:
                    self.security.close()
            finally:
                self.engine.dispose()

    async def __aenter__(self) -> System:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _agent_class(orchestrator: Orchestrator, name: str) -> object:
    """The class of ``name``'s running instances (a new one after a code reload)."""
    try:
        return type(orchestrator.instances(name)[0])
    except (NotFound, IndexError):
        return None


async def open_system(
    state_url: str | None = None,
    *,
    clock: Clock | None = None,
    start_agents: bool = True,
    max_concurrency: int = 16,
    runner: str = "local",
    scheduler: str | None = None,
) -> System:
    """Open the store at ``state_url`` (option, ``DEVSKYY_STATE_URL``, or the default).

    ``runner="dask"`` runs step attempts on a Dask cluster (``runtime.dask_runner``): the
    one at ``scheduler``, else a LocalCluster started here and closed with the system.
    """
    url = resolve_state_url(state_url, Path.cwd())
    clock = clock or SystemClock()
    engine = open_engine(url)
    system: System | None = None
    try:
        state = SqlStateStore(engine)
        live = LiveView(state)
        orchestrator = Orchestrator(
            clock,
            history=SqlHistoryStore(engine),
            max_concurrency=max_concurrency,
            # API keys in parameters, outputs or errors are stored as [redacted].
            runs=RedactingRunStore(SqlRunStore(engine)),
        )
        registry = Registry(
            orchestrator, live.resources, clock=clock, engine=engine, state_dir=state_dir(url)
        )
        workflows = registry.workflow_engine()
        system = System(url, engine, clock, state, orchestrator, registry, workflows, live)
        if runner == "dask":
            # Imported here: the Dask seam is only on the path of --runner dask.
            from devskyy.runtime.dask_runner import (  # noqa: PLC0415
                DaskStepRunner,
                start_dask,
            )

            system.cluster = await start_dask(scheduler)
            orchestrator.runner = DaskStepRunner(
                system.cluster.client,
                agents=registry.applied_agent,
                local=orchestrator.runner,
                state_url=url,
                prefixes=registry.prefixes,
                code_of=lambda name: _agent_class(orchestrator, name),
            )
        if start_agents:
            system.discovery = await registry.discover_and_register_all_agents()
    except BaseException:
        if system is not None and system.cluster is not None:
            await system.cluster.close()
        engine.dispose()
        raise
    return system
